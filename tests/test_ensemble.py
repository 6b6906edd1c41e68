"""Ensembles: the mean of the members' probabilities, through every search strategy.

An ensemble of one model, or of copies of one model, must decode exactly like
that model; members with other vocabularies are refused with the files named;
`seq2seq-translate --checkpoint A B` and `seq2seq-bleu --checkpoint A B --ensemble` decode
with the ensemble.
"""

from __future__ import annotations

import copy
import gzip
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seq2seq.checkpoint import load_checkpoint, save_checkpoint
from seq2seq.commands.bleu import main as bleu_main
from seq2seq.commands.translate import main as translate_main
from seq2seq.nn.ensemble import Ensemble
from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.search import generate
from seq2seq.tokenizers import tokenizer_to_state, train_tokenizer
from seq2seq.translation.translator import Translator

TOL = 1e-5


# ---------------------------------------------------------------- in-process


@pytest.fixture(scope="module")
def models(one_thread) -> list[Seq2Seq]:
    """Two different random models with one vocabulary (quality does not matter here)."""
    members = []
    for seed, cell in ((0, "gru"), (1, "lstm")):
        torch.manual_seed(seed)
        spec = ModelSpec(40, 30, cell=cell, embedding_size=16, hidden_size=24, dropout=0.0)
        members.append(Seq2Seq(spec).eval())
    return members


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(5)
    return torch.randint(4, 40, (5, 8)), torch.tensor([8, 3, 6, 1, 5])


SEARCHES = [
    ("greedy", {}),
    ("beam", {"beam_size": 4, "nbest": 3}),
    ("sample", {"seed": 2}),
]


def assert_same(expected, got) -> None:
    for e_hyps, g_hyps in zip(expected, got, strict=True):
        assert [h.tokens for h in g_hyps] == [h.tokens for h in e_hyps]
        assert [h.score for h in g_hyps] == pytest.approx([h.score for h in e_hyps], abs=TOL)


@pytest.mark.parametrize("strategy, options", SEARCHES)
def test_ensemble_of_one_or_of_copies_equals_the_model(models, batch, strategy, options) -> None:
    model = models[0]
    expected = generate(model, *batch, strategy, max_length=20, **options)
    for ensemble in (Ensemble([model]), Ensemble([model, copy.deepcopy(model)])):
        assert_same(expected, generate(ensemble, *batch, strategy, max_length=20, **options))


def test_decode_step_is_the_log_of_the_mean_probability(models, batch) -> None:
    src, lengths = batch
    ensemble = Ensemble(models)
    tokens = torch.tensor([5, 6, 7, 8, 9])
    with torch.inference_mode():
        enc = ensemble.encode(src, lengths)
        state = ensemble.init_state(enc)
        mixed, _ = ensemble.decode_step(tokens, enc, state)
        probs = []
        for model in models:
            member_enc = model.encode(src, lengths)
            logp, _ = model.decode_step(tokens, member_enc, model.init_state(member_enc))
            probs.append(logp.exp())
    assert torch.allclose(mixed.exp(), sum(probs) / 2, atol=1e-6)
    assert torch.allclose(mixed.exp().sum(-1), torch.ones(5), atol=1e-5)
    assert ensemble.attention(state) is None  # fixed-vector members have no attention


def test_ensemble_beam_is_batching_invariant(models, batch) -> None:
    src, lengths = batch
    ensemble = Ensemble(models)
    batched = generate(ensemble, src, lengths, "beam", beam_size=3, nbest=2, max_length=15)
    for i in range(src.size(0)):
        alone = generate(
            ensemble, src[i : i + 1, : lengths[i]], lengths[i : i + 1], "beam",
            beam_size=3, nbest=2, max_length=15,
        )  # fmt: skip
        assert_same([batched[i]], alone)


class Attending(torch.nn.Module):
    """A member stand-in with fixed attention weights (only `attention` is used)."""

    def __init__(self, weights: torch.Tensor | None) -> None:
        super().__init__()
        self.weights = weights

    def attention(self, state):
        return self.weights


def test_attention_is_the_members_mean() -> None:
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    ensemble = Ensemble([Attending(a), Attending(b), Attending(None)])
    assert torch.equal(ensemble.attention([None, None, None]), torch.tensor([[0.5, 0.5]]))


def test_members_must_share_the_target_vocabulary(models) -> None:
    torch.manual_seed(0)
    other = Seq2Seq(ModelSpec(40, 31, embedding_size=8, hidden_size=8, dropout=0.0))
    with pytest.raises(ValueError, match="target vocabulary"):
        Ensemble([models[0], other])


# ---------------------------------------------------------------- checkpoints and CLI


def backwards_tokenizer(data_root: Path) -> dict:
    """A sentencepiece tokenizer of the same size trained on reversed German: other pieces."""
    with gzip.open(data_root / "multi30k" / "train.de.gz", "rt", encoding="utf-8") as f:
        lines = [next(f).strip()[::-1] for _ in range(2000)]
    return tokenizer_to_state("sentencepiece", train_tokenizer("sentencepiece", lines, 500))


@pytest.fixture(scope="module")
def checkpoints(
    tmp_path_factory: pytest.TempPathFactory, data_root: Path, fixed_run: Path, one_thread
) -> dict[str, Path]:
    """A tiny model trained on real Multi30k, a perturbed copy, and a foreign-vocabulary copy
    (the copies beside this module's files: the shared run folder is only read)."""
    first = fixed_run / "checkpoints" / "best.pt"
    folder = tmp_path_factory.mktemp("ensemble_checkpoints")
    payload = load_checkpoint(first)
    payload.pop("format")
    generator = torch.Generator().manual_seed(0)
    noisy = copy.deepcopy(payload)
    for tensor in noisy["model"].values():
        if tensor.is_floating_point():
            tensor += 0.05 * torch.randn(tensor.shape, generator=generator)
    other = folder / "noisy.pt"
    save_checkpoint(other, noisy)
    foreign = copy.deepcopy(payload)
    foreign["tokenizers"]["tgt"] = backwards_tokenizer(data_root)
    wrong = folder / "foreign.pt"
    save_checkpoint(wrong, foreign)
    return {"a": first, "b": other, "foreign": wrong}


@pytest.fixture(scope="module")
def source(checkpoints, data_root: Path, tmp_path_factory) -> tuple[Path, Path]:
    """30 real test sentences and their references."""
    folder = tmp_path_factory.mktemp("ensemble_text")
    paths = []
    for lang in ("en", "de"):
        with gzip.open(data_root / "multi30k" / f"test_2016_flickr.{lang}.gz", "rt") as f:
            lines = [next(f) for _ in range(30)]
        path = folder / f"test.{lang}"
        path.write_text("".join(lines), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def run_translate(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        translate_main(list(args))
    return exit_info.value.code


def translate(checkpoints: list[Path], src: Path, out: Path, *flags: str) -> list[str]:
    names = [str(c) for c in checkpoints]
    assert run_translate("--checkpoint", *names, "-i", str(src), "-o", str(out), *flags) == 0
    return out.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("flags", [(), ("--search", "beam", "--beam-size", "3", "--nbest", "2")])
def test_translate_with_copies_equals_one_checkpoint(checkpoints, source, tmp_path, flags) -> None:
    a = checkpoints["a"]
    single = translate([a], source[0], tmp_path / "single.de", *flags)
    double = translate([a, a], source[0], tmp_path / "double.de", *flags)
    assert len(single) == 30 and double == single


def test_translator_ensemble_scores(checkpoints, source) -> None:
    lines = source[0].read_text(encoding="utf-8").splitlines()
    single = Translator.from_checkpoint(checkpoints["a"])
    assert isinstance(single.model, Seq2Seq)  # one checkpoint: no wrapper at all
    pair = Translator.from_checkpoints([checkpoints["a"], checkpoints["a"]])
    assert isinstance(pair.model, Ensemble)
    options = {"search": "beam", "beam_size": 3, "nbest": 3}
    assert_same(single.hypotheses(lines, **options), pair.hypotheses(lines, **options))
    mixed = Translator.from_checkpoints([checkpoints["a"], checkpoints["b"]])
    assert [t.text for t in mixed.translate(lines)] != [t.text for t in single.translate(lines)]


def test_foreign_vocabulary_is_refused_with_both_files_named(checkpoints, source, capsys) -> None:
    a, foreign = checkpoints["a"], checkpoints["foreign"]
    code = run_translate("--checkpoint", str(a), str(foreign), "-i", str(source[0]))
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot ensemble" in err and "target" in err
    assert str(a) in err and str(foreign) in err and "Traceback" not in err


def test_console_scripts_with_an_ensemble(checkpoints, source, tmp_path, capsys) -> None:
    a, b = str(checkpoints["a"]), str(checkpoints["b"])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "seq2seq.commands.translate",
            "--checkpoint",
            a,
            b,
            "-i",
            str(source[0]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 30

    record = tmp_path / "bleu.jsonl"
    argv = ["--checkpoint", a, b, "--ensemble", "--src", str(source[0]), "--ref", str(source[1])]
    with pytest.raises(SystemExit) as exit_info:
        bleu_main([*argv, "--record", str(record)])
    assert exit_info.value.code == 0, capsys.readouterr().err
    entry = json.loads(record.read_text(encoding="utf-8"))
    assert entry["checkpoint"] == [a, b]
    assert math.isfinite(entry["metrics"]["BLEU"]["score"])
