"""Confidence values and source flags: how far to trust each translated line.

The confidence is a forced replay of the chosen hypothesis, so for greedy search it must
equal the search's own log-probability per token; flags must fire on sources the model
cannot know (unknown script, far longer than its training sentences) and stay quiet on
real test sentences. The tiny attention model trained on real Multi30k (attention_run)
translates.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from seq2seq.commands.translate import main as translate_main
from seq2seq.search import length_limits
from seq2seq.translation.translator import Translator

UNKNOWN = "東京 の 大きな 駅 で 電車 を 待つ 人々"  # script absent from Multi30k


@pytest.fixture(scope="module")
def translator(attention_run: Path, one_thread) -> Translator:
    return Translator.from_pretrained(attention_run)


@pytest.fixture(scope="module")
def sentences(data_root: Path) -> list[str]:
    with gzip.open(data_root / "multi30k" / "test_2016_flickr.en.gz", "rt") as f:
        return f.read().splitlines()[:40]


def test_confidence_of_hypotheses_cut_at_the_length_limit(translator, sentences):
    """The tiny model rarely ends a sentence: its greedy hypotheses stop at the length
    limit without EOS. Their replay adds EOS's log-probability, so the confidence falls
    below the search's own per-token score. (Where EOS was generated the two are equal:
    tests/test_training.py checks that on a model that ends its sentences.)"""
    found = translator.translate(sentences, confidence=True)
    hyps = translator.hypotheses(sentences)
    for line, translation, (hyp, *_) in zip(sentences, found, hyps, strict=True):
        n = len(hyp.tokens)
        limit = int(length_limits(torch.tensor([len(translator._source_ids(line))]), 200, 2.0))
        if n == limit:
            assert translation.confidence * (n + 1) < hyp.score
        assert translation.confidence <= 0
    assert len({t.confidence for t in found}) > 30  # one value per line, not a constant


def test_beam_confidence_is_a_replay_not_the_beam_score(translator, sentences):
    found = translator.translate(sentences[:10], search="beam", beam_size=4, confidence=True)
    for translation in found:
        assert translation.confidence is not None and translation.confidence <= 0


def test_flags(translator, sentences):
    long_line = " ".join(sentences)  # 40 captions in one line
    lines = [sentences[0], UNKNOWN, long_line, ""]
    found = translator.translate(lines, confidence=True)
    assert found[0].flags == []
    assert found[1].flags == ["unknown_source"]
    assert found[2].flags == ["long_source"]
    assert found[3].flags == [] and found[3].confidence is None
    # the threshold is the training sources' 99th percentile, saved in the checkpoint
    p99 = translator.metadata["source_lengths"]["p99"]
    assert 10 < p99 < 60 and translator.long_source_tokens == p99


def test_confidence_through_export(translator, tmp_path: Path):
    translator.save_pretrained(tmp_path / "model")
    again = Translator.from_pretrained(tmp_path / "model")
    assert again.long_source_tokens == translator.long_source_tokens


def test_cli_fields(attention_run: Path, sentences, tmp_path: Path, capsys):
    source = tmp_path / "in.en"
    source.write_text(f"{sentences[0]}\n\n{UNKNOWN}\n", encoding="utf-8")
    argv = ["--checkpoint", str(attention_run), "-i", str(source), "--confidence"]
    with pytest.raises(SystemExit) as done:
        translate_main(argv)
    assert done.value.code == 0
    text = capsys.readouterr().out.split("\n")
    assert len(text) == 4 and text[-1] == ""
    first = text[0].split("\t")
    assert len(first) == 3 and float(first[0]) <= 0 and first[1] == ""
    assert text[1] == "\t\t"  # an empty line: no confidence, no flags, no text
    assert text[2].split("\t")[1] == "unknown_source"
    with pytest.raises(SystemExit):
        translate_main([*argv, "--format", "jsonl"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["flags"] for r in records] == [[], [], ["unknown_source"]]
    assert records[0]["confidence"] == pytest.approx(float(first[0]), abs=1e-4)
