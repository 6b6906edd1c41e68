"""A full disk in the middle of a checkpoint write (issue 7).

What a user gets: the previous checkpoint survives untouched and loadable, no partial
or temporary file is left behind, and training stops at once with one message naming
the file, "no space left on device", and the trainer.resume=... that continues from the
newest good checkpoint once there is space. (It stops rather than training on with a
warning: a run that cannot save would otherwise burn hours that a pre-emption, or its
own final save, then loses; stopping loses at most trainer.checkpoint_every steps.)

The full disk is simulated at the writer of seq2seq.checkpoint (its `_open_for_writing`
seam): the file accepts a budget of bytes, writes part of the buffer that crosses it,
then raises OSError(ENOSPC), as write(2) on a full disk does. torch.save masks that
error with a RuntimeError of its own; the checkpoint code must still report it as a
full disk. One test makes the kernel refuse the write for real (RLIMIT_FSIZE).
"""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _models import make_config

import seq2seq.checkpoint as checkpoint
from seq2seq.checkpoint import CheckpointWriteError, load_checkpoint, save_checkpoint
from seq2seq.commands.train import train
from seq2seq.training.run import TrainingError


class FullDisk:
    """A binary file that takes `budget` bytes, then fails like a full disk."""

    def __init__(self, file, budget: int) -> None:
        self.file, self.left = file, budget
        self.failed = False

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self.left:
            self.file.write(data[: self.left])  # a partial write reaches the disk first
            self.left = 0
            self.failed = True
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.left -= len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def fill_disk_after(monkeypatch, saves_ok: int, budget: int) -> list[FullDisk]:
    """The first `saves_ok` checkpoint writes succeed; every later one fails after
    `budget` bytes. Returns the failing writers."""
    real = checkpoint._open_for_writing
    calls, failing = [0], []

    def open_for_writing(fd: int):
        calls[0] += 1
        if calls[0] <= saves_ok:
            return real(fd)
        failing.append(FullDisk(real(fd), budget))
        return failing[-1]

    monkeypatch.setattr(checkpoint, "_open_for_writing", open_for_writing)
    return failing


def payload(value: float, size: int = 50_000) -> dict:
    return {"model": {"w": torch.full((size,), value)}, "progress": {"step": int(value)}}


def only_checkpoints(folder: Path) -> list[str]:
    """Every file in the folder: a temporary file left behind would show here."""
    return sorted(p.name for p in folder.iterdir())


def test_full_disk_halfway_through_a_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, payload(1.0))
    before = path.read_bytes()
    failing = fill_disk_after(monkeypatch, saves_ok=0, budget=len(before) // 2)
    with pytest.raises(CheckpointWriteError) as info:
        save_checkpoint(path, payload(2.0))
    assert failing and failing[0].failed  # it really failed halfway, inside torch.save
    message = str(info.value)
    assert str(path) in message and "no space left on device" in message
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((50_000,), 1.0))
    assert only_checkpoints(tmp_path) == ["last.pt"]


def test_full_disk_on_the_first_save_leaves_nothing(tmp_path, monkeypatch):
    fill_disk_after(monkeypatch, saves_ok=0, budget=1000)
    with pytest.raises(CheckpointWriteError, match="nothing was written"):
        save_checkpoint(tmp_path / "best.pt", payload(1.0))
    assert only_checkpoints(tmp_path) == []


def test_kernel_refusing_the_write_is_reported_and_cleaned_up(tmp_path):
    """No simulation: RLIMIT_FSIZE makes write(2) fail with EFBIG past the limit
    (Python ignores SIGXFSZ), through the real file object torch.save writes to."""
    path = tmp_path / "last.pt"
    save_checkpoint(path, payload(1.0, size=1000))
    before = path.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
    try:
        with pytest.raises(CheckpointWriteError) as info:
            save_checkpoint(path, payload(2.0, size=200_000))  # 800 kB
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(path) in str(info.value) and info.value.errno == errno.EFBIG
    assert path.read_bytes() == before
    assert only_checkpoints(tmp_path) == ["last.pt"]


# ----------------------------------------------------------- during training
TRAIN = [
    "data.train_subset=300",
    "data.dev_subset=20",
    "tokenizer.vocab_size=100",
    "model.cell=gru",
    "model.decoder=fixed",
    "model.tie_embeddings=none",
    "model.embedding_size=16",
    "model.hidden_size=32",
    "model.encoder_hidden_size=16",
    "trainer.max_steps=12",
    "trainer.eval_every=0",
    "trainer.eval_sentences=5",
    "trainer.eval_max_length=20",
    "trainer.checkpoint_every=5",
    "trainer.keep_last=3",
    "trainer.log_every=1",
    "trainer.batch_tokens=300",
    "trainer.threads=1",
    "trainer.warmup_steps=0",
]


def run_training(run_dir: Path, overrides: list[str] = ()) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    try:
        train(make_config([*TRAIN, *overrides]), run_dir)
    finally:
        torch.set_num_threads(threads)


def logged_steps(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [r["step"] for r in map(json.loads, lines) if "train_loss" in r]


# Writes: step_5.pt and last.pt at step 5, step_10.pt and last.pt at step 10, last.pt at 12.
@pytest.mark.parametrize("saves_ok,failing_file", [(2, "step_10.pt"), (3, "last.pt")])
def test_training_stops_on_a_full_disk_and_resumes_once_there_is_space(
    tmp_path, monkeypatch, saves_ok, failing_file
):
    run = tmp_path / "run"
    fill_disk_after(monkeypatch, saves_ok=saves_ok, budget=20_000)
    with pytest.raises(TrainingError) as info:
        run_training(run)
    message = str(info.value)
    ckpts = run / "checkpoints"
    assert str(ckpts / failing_file) in message
    assert "no space left on device" in message
    assert f"trainer.resume={run}" in message and "step 10" in message

    # The previous good checkpoint is intact and no temporary file is left.
    assert load_checkpoint(ckpts / "last.pt")["progress"]["step"] == 5
    assert load_checkpoint(ckpts / "step_5.pt")["progress"]["step"] == 5
    expected = ["last.pt", "step_10.pt", "step_5.pt"] if saves_ok == 3 else ["last.pt", "step_5.pt"]
    assert only_checkpoints(ckpts) == expected

    # Space again: the resume goes on from step 5.
    monkeypatch.undo()
    resumed = tmp_path / "resumed"
    run_training(resumed, [f"trainer.resume={run}"])
    assert logged_steps(resumed) == list(range(6, 13))


def test_train_command_on_a_full_disk_exits_2_with_one_clear_line(tmp_path):
    run = tmp_path / "run"
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import test_checkpoint_faults as t
import seq2seq.checkpoint as c
real = c._open_for_writing
c._open_for_writing = lambda fd: t.FullDisk(real(fd), 5000)
from seq2seq.commands.train import main
sys.argv = ["seq2seq-train", *t.TRAIN, "hydra.run.dir={run}"]
main()
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "SEQ2SEQ_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
        timeout=240,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    # (The progress bar's last state may precede it on the same line.)
    error = re.findall(r"error: .*", result.stderr)
    assert len(error) == 1, result.stderr[-3000:]
    assert str(run / "checkpoints" / "step_5.pt") in error[0]
    assert "no space left on device" in error[0] and "trainer.resume=" in error[0]
    assert only_checkpoints(run / "checkpoints") == []


def test_checkpoint_gets_the_permissions_of_any_file_the_user_writes(tmp_path):
    """The temporary file is private (mkstemp); the renamed checkpoint must not be."""
    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "a.pt", payload(1.0, size=10))
        os.umask(0o077)
        save_checkpoint(tmp_path / "b.pt", payload(1.0, size=10))
    finally:
        os.umask(old)
    assert (tmp_path / "a.pt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.pt").stat().st_mode & 0o777 == 0o600


def test_periodic_checkpoints_by_wall_clock_minutes(tmp_path):
    """trainer.checkpoint_minutes writes last.pt and step_N.pt by time, without step counts."""
    from _models import train_tiny

    run = train_tiny(
        tmp_path / "run",
        [
            "trainer.max_steps=12",
            "trainer.eval_every=0",
            "trainer.checkpoint_every=0",
            "trainer.checkpoint_minutes=0.0001",
            "trainer.keep_last=20",
        ],
    )
    steps = sorted(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.pt"))
    assert len(steps) >= 10 and steps[-1] >= 11
