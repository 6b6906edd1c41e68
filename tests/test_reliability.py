"""Reliability by doing the damage: malicious checkpoints, corrupted checkpoints,
kills in the middle of training (issue 7)."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _models import TINY, make_config, train_tiny

from seq2seq.checkpoint import FORMAT, CheckpointError, load_checkpoint
from seq2seq.commands.translate import main as translate_main
from seq2seq.training.run import TrainingError
from seq2seq.training.trainer import Trainer

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


def test_translate_refuses_a_pickled_payload(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "evil.pt", marker)
    source = tmp_path / "src.txt"
    source.write_text("A man is riding a bike.\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    with pytest.raises(SystemExit) as info:
        translate_main(["--checkpoint", str(path), "-i", str(source), "-o", str(out)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert REFUSAL in err and "Traceback" not in err
    assert not out.exists()
    assert not marker.exists()


def test_training_resume_refuses_a_pickled_payload(tmp_path):
    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "evil.pt", marker)
    cfg = make_config([*TINY, f"trainer.resume={path}"])
    # seq2seq.train turns a TrainingError into one "error: ..." line and exit status 2.
    with pytest.raises(TrainingError, match=REFUSAL):
        Trainer(cfg, tmp_path / "run").train()
    assert not marker.exists()


# --------------------------------------------------------------- kills and faults
# Identical for the in-process reference run and the subprocess runs.
COMMON = ["trainer.checkpoint_every=5", "trainer.threads=1"]
MAX_STEPS = 40


def logged_losses(run_dir: Path) -> dict[int, float]:
    """train_loss by step; a last line cut short by a kill is ignored."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return {}
    losses = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "train_loss" in record:
            losses[record["step"]] = record["train_loss"]
    return losses


def checkpoint_step(path: Path) -> int:
    return load_checkpoint(path)["progress"]["step"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 40-step run: the losses every interrupted run must reproduce."""
    threads = torch.get_num_threads()
    try:
        run = train_tiny(tmp_path_factory.mktemp("reference"), COMMON)
    finally:
        torch.set_num_threads(threads)
    losses = logged_losses(run)
    assert sorted(losses) == list(range(1, MAX_STEPS + 1))
    return run, losses


def test_keep_last_retention(reference):
    run, _ = reference
    kept = sorted(p.name for p in (run / "checkpoints").glob("step_*.pt"))
    # Periodic saves at 5, 10, …, 35 (the stop at 40 writes last.pt); keep_last defaults to 3.
    assert kept == ["step_25.pt", "step_30.pt", "step_35.pt"]
    assert [checkpoint_step(run / "checkpoints" / name) for name in kept] == [25, 30, 35]


def test_resume_falls_back_past_a_corrupted_last_checkpoint(tmp_path, reference, caplog):
    ref_run, expected = reference
    first = tmp_path / "first"
    shutil.copytree(ref_run / "checkpoints", first / "checkpoints")
    last = first / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # a crash mid-copy
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(last)
    threads = torch.get_num_threads()
    try:
        with caplog.at_level(logging.WARNING):
            resumed = train_tiny(tmp_path / "resumed", [*COMMON, f"trainer.resume={first}"])
    finally:
        torch.set_num_threads(threads)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(str(last) in w for w in warnings), warnings
    losses = logged_losses(resumed)
    assert sorted(losses) == list(range(36, MAX_STEPS + 1))  # went on from step_35.pt
    assert losses == {step: expected[step] for step in losses}


def test_resume_with_no_readable_checkpoint_names_every_file(tmp_path):
    ckpts = tmp_path / "run" / "checkpoints"
    ckpts.mkdir(parents=True)
    (ckpts / "last.pt").write_bytes(b"not a checkpoint")
    (ckpts / "step_5.pt").write_bytes(b"")
    cfg = make_config([*TINY, f"trainer.resume={tmp_path / 'run'}"])
    with pytest.raises(TrainingError) as info:
        Trainer(cfg, tmp_path / "new").train()
    assert "last.pt" in str(info.value) and "step_5.pt" in str(info.value)
    # summary.json records the error the run stopped with
    summary = json.loads((tmp_path / "new" / "summary.json").read_text(encoding="utf-8"))
    assert summary["error"] == f"TrainingError: {info.value}"
    assert summary["stop_reason"] == f"error: {info.value}" and summary["updates"] == 0


class CheckpointWatcher:
    """Loads every checkpoint file it sees (once per version): none may ever be unreadable."""

    def __init__(self) -> None:
        self.seen: dict[Path, tuple[int, int]] = {}
        self.loads = 0

    def check(self, run_dir: Path) -> None:
        for path in sorted((run_dir / "checkpoints").glob("*.pt")):
            try:
                stat = path.stat()
            except FileNotFoundError:  # pruned between glob and stat
                continue
            version = (stat.st_mtime_ns, stat.st_size)
            if self.seen.get(path) == version:
                continue
            try:
                load_checkpoint(path)
            except CheckpointError as exc:
                if path.exists():  # pruned while being read is fine; unreadable is not
                    raise AssertionError(f"unreadable checkpoint on disk: {exc}") from exc
                continue
            self.seen[path] = version
            self.loads += 1


def start_training(run_dir: Path, *overrides: str) -> subprocess.Popen:
    log = open(run_dir.parent / f"{run_dir.name}.log", "wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "seq2seq.train",
            "+exp=en_de_fixed",
            *TINY,
            *COMMON,
            *overrides,
            f"hydra.run.dir={run_dir}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=subprocess_env(),
    )


class Run:
    """A training subprocess that gets `sig` once metrics.jsonl logs step `target`; `then`
    (if given) starts the run that follows it, once it has ended (see poll_beside)."""

    def __init__(self, run_dir: Path, *overrides: str, target=None, sig=None, then=None) -> None:
        self.run_dir, self.target, self.sig, self.sent = run_dir, target, sig, False
        self.then, self.next = then, None
        self.proc = start_training(run_dir, *overrides)

    def poll(self, watcher: CheckpointWatcher) -> bool:
        """Check its checkpoints, signal it when due; False once it has ended."""
        watcher.check(self.run_dir)
        if self.proc.poll() is not None:
            return False
        if (
            not self.sent
            and self.target
            and max(logged_losses(self.run_dir), default=0) >= self.target
        ):
            self.proc.send_signal(self.sig)
            self.sent = True
        return True

    def output(self) -> str:
        return (self.run_dir.parent / f"{self.run_dir.name}.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def poll_beside(runs: list[Run], watcher: CheckpointWatcher) -> list[Run]:
    """Poll the runs beside the main one: those still going, and in place of one that
    has ended the run that follows it (started now, so that it overlaps the others)."""
    going = []
    for run in runs:
        if run.poll(watcher):
            going.append(run)
        elif run.then is not None:
            run.next, run.then = run.then(), None
            going.append(run.next)
    return going


def drive(main: Run, others: list[Run], watcher: CheckpointWatcher) -> None:
    """Until `main` ends: poll it and the runs beside it (see poll_beside)."""
    deadline = time.monotonic() + 240
    while main.poll(watcher):
        assert time.monotonic() < deadline, "training subprocess hung"
        others[:] = poll_beside(others, watcher)
        time.sleep(0.02)
    watcher.check(main.run_dir)


def test_sigkill_sigterm_and_sigint_at_random_moments_then_resume_gives_the_uninterrupted_losses(
    tmp_path, reference
):
    """Two SIGKILLs at seeded random steps, each followed by a resume from the killed run's
    folder, then a resume that runs to the end; beside them (in parallel, to save time) a
    run that gets SIGTERM and one that gets SIGINT (Ctrl-C), which is resumed to the end
    as soon as it has stopped. Every checkpoint file seen on disk, at any poll, must load."""
    _, expected = reference
    rng = random.Random(20261125)
    watcher = CheckpointWatcher()
    term = Run(tmp_path / "term", target=rng.randint(8, 30), sig=signal.SIGTERM)
    ctrl_c = Run(
        tmp_path / "int",
        target=random.Random(7).randint(8, 30),
        sig=signal.SIGINT,
        then=lambda: Run(tmp_path / "int_resumed", f"trainer.resume={ctrl_c.run_dir}"),
    )
    beside = [term, ctrl_c]
    resume_from, resume_step, runs = None, 0, []
    try:
        for segment in range(3):
            extra = [f"trainer.resume={resume_from}"] if resume_from else []
            # At least 6 steps in, so a periodic checkpoint of this run exists.
            target = rng.randint(resume_step + 6, resume_step + 16) if segment < 2 else None
            run = Run(tmp_path / f"run{segment}", *extra, target=target, sig=signal.SIGKILL)
            try:
                drive(run, beside, watcher)
            finally:
                run.stop()
            losses = logged_losses(run.run_dir)
            assert losses, run.output()
            assert sorted(losses) == list(range(resume_step + 1, max(losses) + 1))
            # Every step this run logged after its resume point: exactly the reference loss.
            assert losses == {step: expected[step] for step in losses}, run.output()
            runs.append((resume_step, max(losses)))
            if segment < 2:
                assert run.sent and run.proc.returncode == -signal.SIGKILL, run.output()
                resume_from = run.run_dir
                resume_step = checkpoint_step(run.run_dir / "checkpoints" / "last.pt")
                # SIGKILL loses at most the steps since the last periodic checkpoint
                # (plus the step or two it took the signal to land).
                assert resume_step % 5 == 0 and max(losses) - resume_step < 5 + 2
            else:
                assert run.proc.returncode == 0, run.output()
                assert max(losses) == MAX_STEPS
        deadline = time.monotonic() + 240
        while beside:
            assert time.monotonic() < deadline, "training subprocess hung"
            beside = poll_beside(beside, watcher)
            time.sleep(0.02)
        resumed = ctrl_c.next
        assert resumed is not None
        watcher.check(resumed.run_dir)
        ctrl_c_losses = logged_losses(ctrl_c.run_dir)  # the resume writes int_resumed/
    finally:
        for run in (term, ctrl_c, ctrl_c.next):
            if run is not None:
                run.stop()
    assert runs[1][0] > 0 and runs[2][0] > runs[1][0]
    assert watcher.loads >= 5

    # SIGTERM: a clean exit that saved last.pt at the step it had reached.
    output = term.output()
    assert term.sent and term.proc.returncode == 0, output
    assert "received SIGTERM" in output and "trainer.resume=" in output
    losses = logged_losses(term.run_dir)
    assert term.target <= max(losses) < MAX_STEPS
    assert checkpoint_step(term.run_dir / "checkpoints" / "last.pt") == max(losses)
    assert losses == {step: expected[step] for step in losses}

    # SIGINT: the same clean exit, and a resume from it runs on to the reference losses.
    output = ctrl_c.output()
    assert ctrl_c.sent and ctrl_c.proc.returncode == 0, output
    assert "received SIGINT" in output and "Traceback" not in output
    stopped = checkpoint_step(ctrl_c.run_dir / "checkpoints" / "last.pt")
    assert stopped == max(ctrl_c_losses) >= ctrl_c.target
    assert ctrl_c_losses == {step: expected[step] for step in ctrl_c_losses}
    assert resumed.proc.returncode == 0, resumed.output()
    losses = logged_losses(resumed.run_dir)
    assert losses == {step: expected[step] for step in range(stopped + 1, MAX_STEPS + 1)}
