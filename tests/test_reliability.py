"""Reliability by doing the damage: malicious checkpoints, corrupted checkpoints,
kills in the middle of training (issue 7)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _models import TINY

from seq2seq.checkpoint import FORMAT, CheckpointError, load_checkpoint

REFUSAL = "contains objects other than tensors and plain data"


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "SEQ2SEQ_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


class _RunsCode:
    """Unpickling this calls os.system: a checkpoint carrying it would run a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def malicious_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"format": FORMAT, "model": {"w": torch.zeros(2)}, "x": _RunsCode(marker)}, path)
    return path


def test_the_crafted_checkpoint_really_runs_code_when_unpickled(tmp_path):
    """Guards the other tests: the payload is live, so 'marker absent' means refused."""
    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_load_checkpoint_refuses_a_pickled_payload(tmp_path):
    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError, match=REFUSAL) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_translate_refuses_a_pickled_payload(tmp_path):
    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "evil.pt", marker)
    result = subprocess.run(
        [sys.executable, "-m", "seq2seq.translate", "--checkpoint", str(path)],
        input="A man is riding a bike.\n",
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert result.returncode == 2
    assert REFUSAL in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not marker.exists()


def test_training_resume_refuses_a_pickled_payload(tmp_path):
    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "evil.pt", marker)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seq2seq.train",
            "+exp=en_de",
            *TINY,
            f"trainer.resume={path}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert result.returncode == 2
    assert REFUSAL in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()
