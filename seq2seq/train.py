"""`python -m seq2seq.train +exp=en_es` — Hydra entry point for training."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from .checkpoint import CheckpointError
from .data.corpus import CorpusError
from .perf import tune_allocator
from .registry import PluginError
from .run_base import TrainingError
from .trainer import Trainer

log = logging.getLogger("seq2seq.train")

USER_ERRORS = (CorpusError, PluginError, TrainingError, CheckpointError, ValueError, TypeError)


def train(cfg: DictConfig, run_dir: Path) -> dict:
    """Train one model into run_dir (the Hydra run directory); returns a summary."""
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
    task = cfg.get("task", "translation")
    if task not in ("translation", "lm"):
        raise ValueError(f"task must be 'translation' or 'lm', got {task!r}")
    if task == "lm":
        from .lm import train_lm  # the character language model (+exp=char_lm, +exp=hello)

        summary = train_lm(cfg, run_dir)
    else:
        summary = Trainer(cfg, run_dir).train()
    log.info("done: %s; checkpoints in %s", summary, run_dir / "checkpoints")
    return summary


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
    _hydra_main()


if __name__ == "__main__":
    main()
