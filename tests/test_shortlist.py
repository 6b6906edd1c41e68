"""Vocabulary shortlists against the full-vocabulary path they replace.

A shortlist that holds every target token must decode exactly as the full vocabulary
does; a learnt one must keep each sentence's translation independent of its batch-mates
and travel with the model (checkpoint, model folder). Its BLEU cost on a real model is
measured by the bench (docs/performance.md), not asserted here.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from seq2seq.checkpoint import load_checkpoint
from seq2seq.commands.translate import main as translate_main
from seq2seq.contracts import SPECIALS
from seq2seq.translation.shortlist import Shortlist, learn_shortlist
from seq2seq.translation.translator import Translator

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sources(data_root: Path) -> list[str]:
    with gzip.open(data_root / "multi30k" / "test_2016_flickr.en.gz", "rt") as f:
        return f.read().splitlines()[:40]


def test_learning_keeps_what_co_occurs_and_what_is_frequent():
    # source 10 always comes with target 20; 11 with 21; target 5 is everywhere
    src = [[10, 12], [10, 13], [11, 12], [11, 13], [10, 11]]
    tgt = [[20, 5], [20, 5], [21, 5], [21, 5], [20, 21, 5]]
    shortlist = learn_shortlist(src, tgt, src_vocab=14, top_k=2, frequent=1)
    assert shortlist.frequent.tolist() == [5]
    assert shortlist.table[10, 0].item() == 20 and shortlist.table[11, 0].item() == 21
    assert shortlist.table[0].tolist() == [0, 0]  # never seen: PAD only
    ids, allowed = shortlist.candidates(torch.tensor([[10, 12], [11, 0]]))
    assert ids[: len(SPECIALS)].tolist() == list(range(len(SPECIALS)))
    mine = {ids[i].item() for i in allowed[0].nonzero().squeeze(1)}
    assert {20, 5} <= mine and 21 not in mine  # 21 is only the second sentence's


def _full(translator: Translator) -> Shortlist:
    """A shortlist that lists every target token for every source token."""
    vocab = translator.tgt_tokenizer.vocab_size
    table = torch.arange(vocab).repeat(translator.src_tokenizer.vocab_size, 1)
    return Shortlist(table, torch.arange(vocab))


@pytest.mark.parametrize("search, options", [("greedy", {}), ("beam", {"beam_size": 4})])
def test_a_shortlist_of_everything_decodes_as_the_full_vocabulary(
    attention_run: Path, sources, search, options
):
    translator = Translator.from_pretrained(attention_run, precision="fp32")
    plain = translator.translate(sources, search=search, batch_size=16, **options)
    translator.shortlist, translator.use_shortlist = _full(translator), True
    listed = translator.translate(sources, search=search, batch_size=16, **options)
    assert [t.text for t in listed] == [t.text for t in plain]
    assert [t.score for t in listed] == pytest.approx([t.score for t in plain], abs=1e-4)


def test_a_learnt_shortlist_is_saved_and_independent_of_the_batch(
    attention_run: Path, sources, tmp_path: Path
):
    payload = load_checkpoint(attention_run / "checkpoints" / "best.pt")
    assert payload["shortlist"]["table"].shape[0] == payload["model_spec"]["src_vocab_size"]
    translator = Translator.from_pretrained(attention_run, precision="fp32")
    assert translator.shortlist is not None and not translator.use_shortlist
    translator.use_shortlist = True
    together = translator.translate(sources, search="beam", beam_size=3)
    alone = [translator.translate(line, search="beam", beam_size=3) for line in sources[:8]]
    assert [t.text for t in alone] == [t.text for t in together[:8]]
    assert [t.score for t in alone] == pytest.approx([t.score for t in together[:8]], abs=1e-4)

    translator.save_pretrained(tmp_path / "model")
    shared = Translator.from_pretrained(tmp_path / "model", precision="fp32")
    shared.use_shortlist = True
    assert torch.equal(shared.shortlist.table, translator.shortlist.table)
    assert [t.text for t in shared.translate(sources)] == [
        t.text for t in translator.translate(sources)
    ]


def test_shortlist_on_the_command_line(attention_run: Path, sources, tmp_path: Path, capsys):
    """Off by default; --shortlist decodes as the Python API with use_shortlist does, and
    a model without a shortlist is one clear error line."""
    source = tmp_path / "in.en"
    source.write_text("\n".join(sources) + "\n", encoding="utf-8")
    for flags, shortlist in (([], False), (["--shortlist"], True)):
        out = tmp_path / f"out{len(flags)}.de"
        argv = ["--checkpoint", str(attention_run), "-i", str(source), "-o", str(out)]
        with pytest.raises(SystemExit) as done:
            translate_main([*argv, "--precision", "fp32", *flags])
        assert done.value.code == 0
        translator = Translator.from_pretrained(attention_run, precision="fp32")
        translator.use_shortlist = shortlist
        expected = [t.text for t in translator.translate(sources)]
        assert out.read_text(encoding="utf-8").splitlines() == expected

    bare = Translator.from_pretrained(attention_run, precision="fp32")
    bare.shortlist = None
    bare.save_pretrained(tmp_path / "bare")
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        translate_main(["--checkpoint", str(tmp_path / "bare"), "-i", str(source), "--shortlist"])
    assert done.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--shortlist" in err[0] and "no vocabulary shortlist" in err[0]
    assert "Traceback" not in err[0]
