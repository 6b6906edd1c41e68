"""summary.json: how a run ended, written once at the end of training.

`seq2seq-results` compares runs from it, so it holds everything a row needs: the stop
reason (or the error), updates, epochs, wall time, the final and best dev scores, the
averaged checkpoint's score, the checkpoint files and a hash of the resolved config.
Scores are keyed as in metrics.jsonl (dev_bleu, dev_loss, dev_ppl; valid_bpc for a
character LM); "best" maps each to {"value", "step"}.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

SUMMARY_NAME = "summary.json"


def config_sha256(cfg: DictConfig) -> str:
    """sha256 of the resolved config as YAML (the text of the run's config.yaml)."""
    return hashlib.sha256(OmegaConf.to_yaml(cfg, resolve=True).encode("utf-8")).hexdigest()


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    """Write run_dir/summary.json atomically: a reader sees the old file or the new one."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / SUMMARY_NAME
    fd, tmp = tempfile.mkstemp(prefix=f".{SUMMARY_NAME}.", dir=run_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2, allow_nan=False, default=_plain)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _plain(value: Any) -> Any:
    """Paths and other objects json cannot write, as text."""
    return str(value)


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN/Inf: a diverged score becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    return value


def run_summary(run: Any, error: BaseException | None = None) -> dict[str, Any]:
    """The summary of a TrainingRun `run` as it stands (after its end, or its error)."""
    p = run.progress
    return finite_or_none(
        {
            "task": run.task,
            "stop_reason": f"error: {error}" if error else run.stop_reason,
            "error": f"{type(error).__name__}: {error}" if error else None,
            "steps": p.step,
            "updates": p.updates,
            "skipped_updates": p.skipped_steps,
            "epochs": p.epoch,
            "wall_s": round(run.wall_seconds(), 3),
            "final": run.last_metrics,
            "best": p.best,
            "best_metric": run.scoreboard.metric,
            "averaged": run.averaged,
            run.speed_key: statistics.median(run.speeds) if run.speeds else None,
            "checkpoints": run.checkpoints.files(),
            "config_sha256": config_sha256(run.cfg),
        }
    )
