"""Data-parallel training through torchrun (gloo on CPU): equal to one process, exact resume."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _models import make_config

from seq2seq.commands.train import train as train_here
from seq2seq.training.distributed import DistContext, export_slurm_environment

# A small attention model (en_de's recipe: biLSTM, Bahdanau with input feeding, all
# embeddings tied) on real Multi30k pairs.
EXP = "en_de"
SMALL = [
    "data.train_subset=2000",
    "data.dev_subset=100",
    "tokenizer.vocab_size=500",
    "model.embedding_size=32",
    "model.hidden_size=32",
    "model.encoder_hidden_size=16",
    "trainer.eval_every=100",
    "trainer.log_every=1",
    "trainer.eval_sentences=50",
    "trainer.threads=1",
    # torchrun's workers do not see conftest's no_native_bf16: fp32, as the run in this process
    "trainer.precision=fp32",
]


def env(cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SEQ2SEQ_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "SEQ2SEQ_CACHE": str(cache),
    }


def train(run_dir: Path, processes: int, *overrides: str) -> list[dict]:
    """Train into run_dir with `processes` torchrun workers; its metrics. One process
    trains in this one: the process boundary is what torchrun's workers need, not the
    runs they are compared with."""
    if processes == 1:
        return train_in_this_process(run_dir, *overrides)
    command = [
        sys.executable,
        *("-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"),
        *("-m", "seq2seq.train", f"+exp={EXP}"),
        *SMALL,
        *overrides,
        f"hydra.run.dir={run_dir}",
    ]
    done = subprocess.run(
        command, env=env(run_dir.parent / "cache"), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return metrics(run_dir)


def train_in_this_process(run_dir: Path, *overrides: str) -> list[dict]:
    """What `python -m seq2seq.train` with env() does, here: the same cache folder
    (data.cache_dir for SEQ2SEQ_CACHE) and one thread (SMALL's trainer.threads=1; this
    process's thread count is restored afterwards)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    cache = f"data.cache_dir={run_dir.parent / 'cache'}"
    threads = torch.get_num_threads()
    try:
        train_here(make_config([*SMALL, *overrides, cache], exp=EXP), run_dir)
    finally:
        torch.set_num_threads(threads)
    return metrics(run_dir)


def metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def train_losses(records: list[dict]) -> dict[int, float]:
    steps = [r["step"] for r in records if "train_loss" in r]
    assert len(steps) == len(set(steps)), f"a step was logged twice (not only rank 0): {steps}"
    return {r["step"]: r["train_loss"] for r in records if "train_loss" in r}


def test_two_processes_give_the_loss_curve_of_one(tmp_path: Path) -> None:
    """Same global batch (64 sentences, 2 batches accumulated per update, so no_sync is
    exercised): 32 per process under DDP."""
    common = ["model.dropout=0", "trainer.max_steps=10", "trainer.accumulate=2"]
    one = train(tmp_path / "one", 1, *common)
    two = train(tmp_path / "two", 2, *common)
    one_losses, two_losses = train_losses(one), train_losses(two)
    assert sorted(two_losses) == list(range(1, 11))
    for step, loss in one_losses.items():
        assert two_losses[step] == pytest.approx(loss, rel=1e-5, abs=1e-5), step
    assert one_losses[10] < one_losses[1] - 0.1  # it trains
    dev_one = [r["dev_loss"] for r in one if "dev_loss" in r]
    dev_two = [r["dev_loss"] for r in two if "dev_loss" in r]
    assert dev_two == pytest.approx(dev_one, rel=1e-5)
    # only rank 0 writes; the checkpoint is the plain model (no DDP prefix)
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == [
        "best.pt",
        "last.pt",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("two") and p.name != "two"]


def test_resume_under_ddp_continues_exactly(tmp_path: Path) -> None:
    """With dropout on, each process has its own RNG; the checkpoint keeps all of them."""
    common = [
        "model.dropout=0.3",
        "trainer.checkpoint_every=4",
        "trainer.keep_last=0",
        "trainer.average_last=0",
    ]
    whole = train_losses(train(tmp_path / "whole", 2, *common, "trainer.max_steps=8"))
    part = tmp_path / "part"
    train(part, 2, *common, "trainer.max_steps=4")
    resumed = train_losses(train(part, 2, *common, "trainer.max_steps=8", f"trainer.resume={part}"))
    assert sorted(resumed) == list(range(1, 9))
    assert [resumed[s] for s in range(5, 9)] == [whole[s] for s in range(5, 9)]


def test_single_process_context_is_the_identity() -> None:
    ctx = DistContext()
    assert not ctx.enabled and ctx.is_main
    assert ctx.all_sum([1.5, 2.0]) == [1.5, 2.0]
    assert ctx.any(False, True) == [False, True]
    assert ctx.broadcast({"a": 1}) == {"a": 1}
    assert ctx.gather(3) == [3]
    assert ctx.shard([4, 5, 6]) == [4, 5, 6]


def test_shards_of_a_batch_cover_it_once() -> None:
    batch = list(range(7))
    shards = [DistContext(rank=r, world_size=3).shard(batch) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert sorted(sum(shards, [])) == batch


def test_a_multi_task_slurm_job_becomes_torchrun_style_ranks(monkeypatch) -> None:
    """What srun gives each task of a 2-node × 2-GPU job (hydra/launcher=slurm with
    tasks_per_node=2); no WORLD_SIZE, since there is no torchrun."""
    # a private copy of the environment: what the export writes must not leak into other tests
    torchrun_keys = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    environ = {k: v for k, v in os.environ.items() if k not in torchrun_keys}
    monkeypatch.setattr(os, "environ", environ)
    slurm = {
        "SUBMITIT_EXECUTOR": "slurm",
        "SLURM_JOB_ID": "77",
        "SLURM_NTASKS": "4",
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_JOB_NODELIST": "gpu[07-08]",
        "SLURM_NODEID": "1",
        "SLURM_PROCID": "3",
        "SLURM_LOCALID": "1",
    }
    environ.update(slurm)
    assert export_slurm_environment()
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"]) == (
        "3",
        "4",
        "1",
    )
    assert os.environ["MASTER_ADDR"] == "gpu07"
    assert not export_slurm_environment()  # torchrun's variables are there now: left alone


def test_resume_with_another_number_of_processes_keeps_the_global_batches(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two processes to update 4, then one process on to 8: the global batches do not
    depend on the number of processes, so without dropout the losses are those of one
    process throughout; with dropout the masks would differ, which is said."""
    common = ["model.dropout=0", "trainer.checkpoint_every=4", "trainer.average_last=0"]
    whole = train_losses(train(tmp_path / "whole", 1, *common, "trainer.max_steps=8"))
    part = tmp_path / "part"
    train(part, 2, *common, "trainer.max_steps=4")
    with caplog.at_level(logging.WARNING, logger="seq2seq.training.distributed"):
        resumed = train(part, 1, *common, "trainer.max_steps=8", f"trainer.resume={part}")
    resumed = train_losses(resumed)
    assert sorted(resumed) == list(range(1, 9))
    for step in range(1, 9):
        assert resumed[step] == pytest.approx(whole[step], rel=1e-5, abs=1e-5), step
    assert "resuming 1 process(es) from a checkpoint of 2" in caplog.text
