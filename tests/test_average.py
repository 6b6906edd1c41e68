"""`seq2seq-average`: the mean of checkpoints' weights, with the first one's metadata."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _models import make_config, train_tiny
from omegaconf import OmegaConf

from seq2seq.checkpoint import load_checkpoint, save_checkpoint
from seq2seq.commands.average import main as average_main
from seq2seq.config import validate
from seq2seq.training.averaging import average_checkpoints
from seq2seq.training.checkpointing import step_checkpoints
from seq2seq.training.corpus import TrainingCorpus, load_data
from seq2seq.training.distributed import DistContext
from seq2seq.training.evaluation import dev_scores
from seq2seq.translation.translator import Translator


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, one_thread) -> Path:
    """A tiny real-data run keeping its three newest periodic checkpoints (step_N.pt)."""
    return train_tiny(
        tmp_path_factory.mktemp("average_run"),
        [
            "trainer.threads=1",
            "trainer.checkpoint_every=10",
            "trainer.keep_last=3",
            "trainer.average_last=3",
        ],
    )


@pytest.fixture(scope="module")
def steps(run: Path) -> list[Path]:
    """The periodic checkpoints, newest first."""
    found = step_checkpoints(run / "checkpoints")
    assert len(found) == 3, sorted(p.name for p in (run / "checkpoints").iterdir())
    return found


def run_average(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        average_main([str(a) for a in args])
    return exit_info.value.code


def test_two_identical_checkpoints_give_the_same_weights(steps, tmp_path) -> None:
    out = tmp_path / "same.pt"
    assert run_average("--checkpoints", steps[0], steps[0], "-o", out) == 0
    original, averaged = load_checkpoint(steps[0]), load_checkpoint(out)
    assert averaged["model"].keys() == original["model"].keys()
    for name, tensor in original["model"].items():
        assert torch.equal(averaged["model"][name], tensor), name


def test_average_is_the_mean_and_keeps_the_first_metadata(steps, tmp_path) -> None:
    out = tmp_path / "mean.pt"
    assert run_average("--checkpoints", *steps, "-o", out) == 0
    payloads = [load_checkpoint(p) for p in steps]
    averaged = load_checkpoint(out)
    for name, tensor in averaged["model"].items():
        mean = sum(p["model"][name].double() for p in payloads) / 3
        assert tensor.dtype == payloads[0]["model"][name].dtype
        assert torch.allclose(tensor.double(), mean, atol=1e-6), name
    assert not torch.equal(averaged["model"][name], payloads[0]["model"][name])
    for key in ("model_spec", "tokenizers", "config", "progress"):
        assert averaged[key] == payloads[0][key]
    for key in ("optimizer", "scheduler", "rng"):
        assert key in payloads[0] and key not in averaged
    assert averaged["averaged_from"] == [str(p) for p in steps]
    translator = Translator.from_checkpoint(out)
    assert len([t.text for t in translator.translate(["A man is riding a bike.", ""])]) == 2


def test_run_dir_last_n_uses_the_newest_step_checkpoints(run, steps, tmp_path) -> None:
    out = tmp_path / "last2.pt"
    assert run_average("--run-dir", run, "--last", 2, "-o", out) == 0
    assert load_checkpoint(out)["averaged_from"] == [str(p) for p in steps[:2]]
    expected = average_checkpoints(steps[:2])["model"]
    for name, tensor in load_checkpoint(out)["model"].items():
        assert torch.equal(tensor, expected[name])


def test_console_script(run, tmp_path) -> None:
    beside = Path(sys.executable).with_name("seq2seq-average")
    script = str(beside) if beside.exists() else shutil.which("seq2seq-average")
    assert script, "seq2seq-average is not installed (pip install -e .)"
    out = tmp_path / "cli.pt"
    proc = subprocess.run(
        [script, "--run-dir", str(run), "--last", "3", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert load_checkpoint(out)["model"]


def test_mismatched_parameters_name_the_file(steps, tmp_path, capsys) -> None:
    payload = load_checkpoint(steps[1])
    payload.pop("format")
    odd = copy.deepcopy(payload)
    name = next(iter(odd["model"]))
    odd["model"][name] = torch.zeros(3, 3)
    bad_shape = tmp_path / "bad_shape.pt"
    save_checkpoint(bad_shape, odd)
    del odd["model"][name]
    missing = tmp_path / "missing.pt"
    save_checkpoint(missing, odd)
    for bad, what in ((bad_shape, f"parameter {name} has shape (3, 3)"), (missing, "missing")):
        out = tmp_path / "never.pt"
        assert run_average("--checkpoints", steps[0], bad, "-o", out) == 2
        err = capsys.readouterr().err
        assert str(bad) in err and what in err and "Traceback" not in err
        assert not out.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--last", "9"], "holds only 3 periodic checkpoint(s)"),
        ([], "--run-dir needs --last N"),
    ],
)
def test_run_dir_errors(run, tmp_path, capsys, argv, message) -> None:
    assert run_average("--run-dir", run, *argv, "-o", tmp_path / "x.pt") == 2
    assert message in capsys.readouterr().err


def test_output_must_not_overwrite_an_input(steps, capsys) -> None:
    assert run_average("--checkpoints", steps[0], steps[1], "-o", steps[1]) == 2
    assert "is one of the inputs" in capsys.readouterr().err


def test_training_ends_with_the_average_of_its_last_checkpoints(run: Path) -> None:
    """trainer.average_last=3 after 40 updates: the final weights (last.pt; step_40.pt is the
    same state) and the two periodic checkpoints before them, scored on dev."""
    ckpts = run / "checkpoints"
    averaged = load_checkpoint(ckpts / "averaged.pt")
    names = [Path(p).name for p in averaged["averaged_from"]]
    assert names == ["last.pt", "step_30.pt", "step_20.pt"]
    expected = average_checkpoints([ckpts / name for name in names])["model"]
    final = load_checkpoint(ckpts / "last.pt")["model"]
    assert averaged["model"].keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(averaged["model"][name], tensor), name
    assert any(not torch.equal(final[n], t) for n, t in expected.items())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in records if "averaged" in r]
    assert len(scored) == 1 and scored[0]["averaged"] == names
    assert scored[0]["step"] == 40
    # the logged scores are the averaged model's (not the final weights'): scored again
    # here on the dev sentences the trainer scores, they come out the same
    cfg = OmegaConf.create(averaged["config"])
    data = load_data(cfg, DistContext(), averaged["tokenizers"])
    dev_tokens = TrainingCorpus(data, cfg, DistContext()).dev_tokens
    scores = {}
    for name in ("averaged.pt", "last.pt"):
        model = Translator.from_checkpoint(ckpts / name).model
        scores[name] = dev_scores(model, data, dev_tokens, cfg.trainer, torch.device("cpu"))
    for key in ("dev_loss", "dev_ppl", "dev_bleu"):
        assert scored[0][key] == pytest.approx(scores["averaged.pt"][key], rel=1e-6), key
    assert scores["last.pt"]["dev_loss"] != pytest.approx(scores["averaged.pt"]["dev_loss"])


def test_average_last_needs_enough_kept_checkpoints() -> None:
    cfg = make_config(["trainer.average_last=5", "trainer.keep_last=3"])
    with pytest.raises(ValueError, match=r"trainer.average_last=5 .* trainer.keep_last >= 4"):
        validate(cfg)
