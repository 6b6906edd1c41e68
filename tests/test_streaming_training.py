"""Training on streamed shards (data.streaming=true): trains, resumes exactly, runs under DDP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _models import make_config

from seq2seq.commands.train import train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shards(tmp_path_factory, data_root: Path) -> Path:
    """600 real Multi30k pairs in 2 shards (small, so an epoch is a dozen updates)."""
    out = tmp_path_factory.mktemp("shards")
    command = [
        sys.executable,
        str(REPO / "data_scripts" / "make_shards.py"),
        *("--corpus", "multi30k", "--root", str(data_root)),
        *("--pairs", "600", "--shards", "2", "--out", str(out), "--overwrite"),
    ]
    subprocess.run(command, check=True, capture_output=True)
    return out


def overrides(shards: Path, *extra: str) -> list[str]:
    return [
        "data.streaming=true",
        f"data.train_shards={shards}/*.jsonl",
        "data.stream_window=200",
        "data.tokenizer_sample=600",
        "data.dev_subset=50",
        "tokenizer.vocab_size=300",
        "model.embedding_size=32",
        "model.hidden_size=32",
        "model.encoder_hidden_size=16",
        "trainer.eval_every=100",
        "trainer.log_every=1",
        "trainer.eval_sentences=20",
        "trainer.threads=1",
        *extra,
    ]


def losses(run_dir: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["train_loss"] for r in records if "train_loss" in r}


def run(run_dir: Path, shards: Path, *extra: str) -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    return train(make_config(overrides(shards, *extra), exp="en_de"), run_dir)


def test_streamed_training_trains_over_epochs_and_resumes_exactly(tmp_path, shards) -> None:
    """15 updates cross the end of the first epoch (about 11 updates); the resume from
    update 6 re-reads the stream and skips what was trained on."""
    whole = run(tmp_path / "whole", shards, "trainer.max_steps=15")
    assert whole["epoch"] >= 1  # an epoch ended and the next one streamed
    reference = losses(tmp_path / "whole")
    assert reference[15] < reference[1] - 0.3
    part = tmp_path / "part"
    run(part, shards, "trainer.max_steps=6")
    run(part, shards, "trainer.max_steps=15", f"trainer.resume={part}")
    resumed = losses(part)
    assert [resumed[s] for s in range(7, 16)] == [reference[s] for s in range(7, 16)]


def test_two_processes_stream_their_own_shards_to_the_end_of_each_epoch(tmp_path, shards):
    """Each process reads one shard; their batch counts may differ, and the epoch must
    still end on both at once (no hang)."""
    run_dir = tmp_path / "ddp"
    command = [
        sys.executable,
        *("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"),
        *("-m", "seq2seq.train", "+exp=en_de"),
        *overrides(shards, "trainer.max_epochs=2"),
        f"hydra.run.dir={run_dir}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    log = (run_dir / "train.log").read_text()
    assert "reached trainer.max_epochs=2" in log
    assert "epoch 1 streamed (this process): StreamStats(read=300, kept=300" in log
    steps = sorted(losses(run_dir))
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 10


def test_streaming_without_shards_says_what_to_set(tmp_path) -> None:
    cfg = make_config(["data.streaming=true"], exp="en_de")
    with pytest.raises(ValueError, match="data.streaming=true needs data.train_shards"):
        train(cfg, tmp_path)
