"""Data-parallel training under `torchrun`: who this process is, and what the processes agree on.

torchrun starts one process per device and sets RANK, WORLD_SIZE and LOCAL_RANK.
Every process builds the same global batches (same seed), trains on its share of
each (`DistContext.shard`), and DistributedDataParallel averages the gradients.
Anything a process decides alone (time is up, a signal arrived, a checkpoint is
due, the loss is NaN) goes through one small all-reduce, so that no process waits
forever in a collective the others skipped. Without torchrun the context is the
single process (rank 0 of 1) and every collective is the identity: one code path.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from seq2seq.training.reproducibility import rng_state, seed_everything, set_rng_state

log = logging.getLogger(__name__)

T = TypeVar("T")

# Rank 0 may validate (greedy decoding of the dev set) while the others wait.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=60)
RANK_SEED_STRIDE = 7919  # rank r seeds its dropout with seed + 7919 r


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: list[T]) -> list[T]:
        """This process's share of one global batch (interleaved, so that the shares of
        a length-sorted batch have about the same lengths)."""
        return items[self.rank :: self.world_size]

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over the processes (float64, one all-reduce)."""
        if not self.enabled:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        dist.all_reduce(tensor)
        return tensor.tolist()

    def any(self, *flags: bool) -> list[bool]:
        """For each flag: is it set on at least one process?"""
        return [total > 0 for total in self.all_sum([float(f) for f in flags])]

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every process (picklable objects)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, device=_collective_device())
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every process's `obj`, in rank order (on every process)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def agree_on_stop(self, stop_reason: str | None, save_due: bool) -> tuple[str | None, bool]:
        """One all-reduce settles whether any process stops (a budget, a signal, early
        stopping) and whether rank 0's periodic checkpoint is due, so every process
        takes the same branch; returns the stop reason and the latter."""
        stop, save = self.any(stop_reason is not None, save_due and self.is_main)
        if stop and stop_reason is None:
            stop_reason = "another process stopped"
        return stop_reason, save

    def gather_rng_states(self) -> list[dict[str, Any]]:
        """Every process's RNG state, in rank order: each has its own dropout masks."""
        return self.gather(rng_state())

    def restore_rng(self, states: list[dict[str, Any]], seed: int, step: int) -> None:
        """This process's RNG state from a checkpoint's `states` (one per rank). From a
        checkpoint of another number of processes the global batches are still exact, as
        they do not depend on it, but dropout masks are not."""
        if len(states) == self.world_size:
            set_rng_state(states[self.rank])
            return
        log.warning(
            "resuming %d process(es) from a checkpoint of %d: dropout masks will differ "
            "from an uninterrupted run",
            self.world_size,
            len(states),
        )
        set_rng_state(states[0])
        if self.rank:
            seed_everything(seed + RANK_SEED_STRIDE * self.rank + step)

    def seed_own_dropout(self, seed: int) -> None:
        """A fresh run: every process other than rank 0 draws its own dropout masks."""
        if self.rank:
            seed_everything(seed + RANK_SEED_STRIDE * self.rank)


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def export_slurm_environment() -> bool:
    """A SLURM job with several tasks (e.g. `hydra/launcher=slurm` with tasks_per_node =
    gpus_per_node) starts one process per task through srun, without torchrun: derive
    torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) from SLURM's,
    with submitit's helper. Returns whether it did."""
    if "WORLD_SIZE" in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) <= 1:
        return False
    try:
        from submitit.helpers import TorchDistributedEnvironment
    except ImportError:
        raise ValueError(
            "this SLURM job has several tasks (SLURM_NTASKS="
            f"{os.environ['SLURM_NTASKS']}), i.e. data-parallel training; reading SLURM's "
            "task layout needs submitit: pip install 'seq2seq-rnn[slurm]'"
        ) from None
    TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return True


def init_from_environment(device_name: str) -> tuple[DistContext, str]:
    """Join the process group torchrun set up (gloo on CPU, NCCL on GPU).

    Returns the context and the device this process should use: with CUDA,
    `cuda:LOCAL_RANK`, so that each process drives its own GPU.
    """
    export_slurm_environment()
    if not launched_by_torchrun():
        return DistContext(), device_name
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    wants_cuda = device_name.startswith("cuda") or (
        device_name == "auto" and torch.cuda.is_available()
    )
    if wants_cuda:
        if not torch.cuda.is_available() or local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"trainer.device={device_name} under torchrun needs one GPU per process: "
                f"local rank {local_rank}, but torch sees "
                f"{torch.cuda.device_count() if torch.cuda.is_available() else 0} GPU(s). "
                "Lower --nproc_per_node, or use trainer.device=cpu (gloo)"
            )
        torch.cuda.set_device(local_rank)
        device_name = f"cuda:{local_rank}"
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if wants_cuda else "gloo", timeout=COLLECTIVE_TIMEOUT
        )
    ctx = DistContext(rank=rank, world_size=world_size, local_rank=local_rank)
    log.info("data-parallel: rank %d of %d on %s", rank, world_size, device_name)
    return ctx, device_name


def shutdown() -> None:
    """Leave the process group while the interpreter is whole: first free what still holds
    it (DistributedDataParallel's reducer, kept alive by reference cycles), because gloo's
    worker threads torn down at interpreter exit abort the process."""
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def wrap_for_training(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `module` under torchrun (it also makes every process
    start from rank 0's weights); the module itself otherwise."""
    if not ctx.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def sync_gradients_on_last(
    module: nn.Module, count: int
) -> Iterator[contextlib.AbstractContextManager]:
    """One context per batch of an update: DDP's `no_sync` for all but the last, so that
    gradient accumulation all-reduces once per update."""
    no_sync = getattr(module, "no_sync", None)
    for i in range(count):
        last = i == count - 1
        yield contextlib.nullcontext() if last or no_sync is None else no_sync()
