"""int8 decoding (`--quantize int8`) against the plain fp32 path it replaces.

The tiny attention model trained on real Multi30k (attention_run) scores real test
sentence pairs both ways: every reference token's log-probability must agree within
rounding. (Its greedy translations are not compared: the tiny model's next-token
distributions are nearly flat, so rounding flips many argmaxes. On the 12-minute en_de
model, 879 of 1,000 greedy lines are identical and BLEU moves by 0.21: docs/performance.md.)
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from seq2seq.commands.translate import main as translate_main
from seq2seq.translation.forced import forced_decode
from seq2seq.translation.translator import Translator


@pytest.fixture(scope="module")
def pairs(data_root: Path) -> tuple[list[str], list[str]]:
    found = []
    for lang in ("en", "de"):
        with gzip.open(data_root / "multi30k" / f"test_2016_flickr.{lang}.gz", "rt") as f:
            found.append(f.read().splitlines()[:200])
    return found[0], found[1]


def test_int8_stays_within_rounding_of_fp32(attention_run: Path, pairs, one_thread):
    src, ref = pairs
    plain = Translator.from_pretrained(attention_run)
    quantized = Translator.from_pretrained(attention_run).quantize("int8")
    assert type(quantized.model.output_layer).__module__.startswith("torch.ao.nn.quantized")
    for a, b in zip(plain.score(src, ref), quantized.score(src, ref), strict=True):
        assert b.tokens == a.tokens
        assert b.logprob == pytest.approx(a.logprob, rel=0.02)
    ids = [[plain._source_ids(s) for s in src], [plain.tgt_tokenizer.encode(r) for r in ref]]
    exact = forced_decode(plain.model, *ids)
    rounded = forced_decode(quantized.model, *ids)
    for a, b in zip(exact, rounded, strict=True):
        assert (a.token_logprobs - b.token_logprobs).abs().max() < 0.1  # nats, per token
    assert any(
        (a.token_logprobs != b.token_logprobs).any() for a, b in zip(exact, rounded, strict=True)
    )


def test_int8_refuses_what_it_cannot_do(attention_run: Path, tmp_path: Path, capsys):
    translator = Translator.from_pretrained(attention_run)
    translator.precision = "bf16"
    with pytest.raises(ValueError, match="fp32"):
        translator.quantize("int8")
    with pytest.raises(ValueError, match="int4"):
        translator.quantize("int4")
    source = tmp_path / "in.en"
    source.write_text("A dog runs.\n\nTwo men.\n", encoding="utf-8")
    argv = ["--checkpoint", str(attention_run), "-i", str(source), "--quantize", "int8"]
    with pytest.raises(SystemExit) as done:
        translate_main(argv)
    assert done.value.code == 0
    assert capsys.readouterr().out.count("\n") == 3  # one line per input line
