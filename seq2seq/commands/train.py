"""`python -m seq2seq.train +exp=en_es` — Hydra entry point for training."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path

import datasets
import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from seq2seq.checkpoint import CheckpointError
from seq2seq.commands.parsing import version_line
from seq2seq.config import composition_error_message, validate
from seq2seq.data.reading import CorpusError
from seq2seq.hardware import tune_allocator
from seq2seq.registry import PluginError
from seq2seq.training import distributed
from seq2seq.training.run import TrainingError
from seq2seq.training.trainer import Trainer

log = logging.getLogger("seq2seq.train")

USER_ERRORS = (CorpusError, PluginError, TrainingError, CheckpointError, ValueError, TypeError)


def train(cfg: DictConfig, run_dir: Path) -> dict:
    """Train one model into run_dir (the Hydra run directory); returns a summary."""
    validate(cfg)  # before any data work: every key, type, range and plugin name
    if cfg.task == "lm":
        if distributed.launched_by_torchrun():
            raise ValueError("torchrun (data-parallel training) is for translation, not task=lm")
        from seq2seq.lm.trainer import (
            train_lm,  # the character language model (+exp=char_lm, +exp=hello)
        )

        _write_config(cfg, run_dir)
        summary = train_lm(cfg, run_dir)
    else:
        dist, device = distributed.init_from_environment(cfg.trainer.device)
        try:
            run_dir = _shared_run_dir(dist, run_dir)
            if dist.is_main:
                _write_config(cfg, run_dir)
            summary = Trainer(cfg, run_dir, dist=dist, device=device).train()
            dist.barrier()  # rank 0 averages and saves last: nobody leaves the group before
        finally:
            distributed.shutdown()
    log.info("done: %s; checkpoints in %s", summary, run_dir / "checkpoints")
    return summary


def train_model(config: DictConfig, run_dir: str | Path) -> dict:
    """Train from Python: a config from `seq2seq.load_config`, into run_dir (created if
    missing; it gets the same files as a command-line run but Hydra's train.log).
    Returns the run's summary, as summary.json holds it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    train(config, run_dir)
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))


def _write_config(cfg: DictConfig, run_dir: Path) -> None:
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")


def _shared_run_dir(dist: distributed.DistContext, run_dir: Path) -> Path:
    """Under torchrun, rank 0's run directory. Each process's Hydra names its own from the
    clock, so another rank's may differ by a second; such a folder holds only Hydra's
    files and is removed. Only rank 0 logs at INFO level."""
    shared = Path(dist.broadcast(str(run_dir)))
    if not dist.is_main:
        logging.getLogger().setLevel(logging.WARNING)
        datasets.disable_progress_bars()
        if shared.resolve() != run_dir.resolve() and {p.name for p in run_dir.iterdir()} <= {
            ".hydra",
            "train.log",
        }:
            shutil.rmtree(run_dir, ignore_errors=True)
    return shared


@hydra.main(config_path="pkg://seq2seq.conf", config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> dict:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    tune_allocator()
    try:
        return train(cfg, run_dir)
    except USER_ERRORS as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    """Train from the command line. Hydra reports a config it cannot compose (an unknown
    key, a value of the wrong type) with a hint that does not fit a typed schema
    (`+KEY=VALUE`). Unless the user asked for its full stack traces (HYDRA_FULL_ERROR),
    Hydra is told to raise such errors instead, and they are reported here in one line,
    with exit status 2 like every config mistake."""
    if "--version" in sys.argv[1:]:  # ours, not Hydra's own (which prints Hydra's version)
        print(version_line("seq2seq-train"))
        sys.exit(0)
    if os.environ.get("HYDRA_FULL_ERROR"):
        _hydra_main()
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        _hydra_main()
    except HydraException as exc:  # composing the config failed; training never started
        print(f"error: {composition_error_message(exc)}", file=sys.stderr)
        sys.exit(2)
    finally:
        os.environ.pop("HYDRA_FULL_ERROR", None)


if __name__ == "__main__":
    main()
