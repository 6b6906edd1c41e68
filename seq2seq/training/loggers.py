"""Dashboards beside metrics.jsonl: TensorBoard (RUN/tensorboard/) and, when chosen and
installed, Weights & Biases. They get the very records metrics.jsonl gets (see
TrainingRun._log), so every trainer feeds them without code of its own; the record keys
below say which values become which charts. Only rank 0 logs."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from omegaconf import DictConfig, OmegaConf

# metrics.jsonl key -> chart name. Training records: translation and character LM.
SCALARS = {
    "train_loss": "train/loss",
    "train_bpc": "train/bpc",
    "lr": "train/lr",
    "tgt_tokens_per_s": "train/tgt_tokens_per_s",
    "chars_per_s": "train/chars_per_s",
    "grad_norm": "train/grad_norm",
    "clip_events": "train/clip_events",
    "dev_loss": "dev/loss",
    "dev_ppl": "dev/ppl",
    "dev_bleu": "dev/bleu",
    "dev_chrf": "dev/chrf",
    "valid_bpc": "valid/bpc",
}
TRANSLATIONS_TAG = "dev/translations"
SHOWN_TRANSLATIONS = 5  # dev sentences shown as text at each validation


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The chart values of a metrics.jsonl record. The averaged checkpoint's scores go to
    averaged/*; the end-of-run record repeats earlier values and gives none."""
    if "event" in record:
        return {}
    out = {}
    for key, tag in SCALARS.items():
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out["averaged/" + tag.split("/")[1] if "averaged" in record else tag] = float(value)
    return out


def translations_markdown(rows: Sequence[tuple[str, str, str]]) -> str:
    """A Markdown table of (source, reference, hypothesis) rows; TensorBoard renders
    text as Markdown."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| source | reference | hypothesis |", "| --- | --- | --- |"]
    lines += [f"| {cell(s)} | {cell(r)} | {cell(h)} |" for s, r, h in rows]
    return "\n".join(lines)


class Logger(Protocol):
    def scalars(self, values: dict[str, float], step: int) -> None: ...

    def translations(self, rows: list[tuple[str, str, str]], step: int) -> None: ...

    def close(self) -> None: ...


class TensorBoardLogger:
    """RUN/tensorboard/ event files; `tensorboard --logdir runs/` shows every run under runs/."""

    def __init__(self, log_dir: Path, resumed_at: int) -> None:
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: slow

        # A resumed run rewrites what the earlier run logged after its last checkpoint.
        self.writer = SummaryWriter(str(log_dir), purge_step=resumed_at or None)

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def translations(self, rows: list[tuple[str, str, str]], step: int) -> None:
        self.writer.add_text(TRANSLATIONS_TAG, translations_markdown(rows), step)

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """A wandb run in the run folder, named after it. WANDB_MODE (offline, disabled) is
    honoured, so a run logs without network when asked to."""

    def __init__(self, run_dir: Path, cfg: DictConfig) -> None:
        import wandb

        self.wandb = wandb
        self.run = wandb.init(
            project=cfg.trainer.wandb_project,
            name=run_dir.name,
            dir=str(run_dir),
            config=OmegaConf.to_container(cfg, resolve=True),
            mode=os.environ.get("WANDB_MODE"),
        )

    def scalars(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def translations(self, rows: list[tuple[str, str, str]], step: int) -> None:
        table = self.wandb.Table(columns=["source", "reference", "hypothesis"], data=rows)
        self.run.log({TRANSLATIONS_TAG: table}, step=step)

    def close(self) -> None:
        self.run.finish()


class RunLoggers:
    """The loggers a run chose (trainer.loggers); all no-ops when disabled (rank > 0)."""

    def __init__(self, loggers: list[Logger]) -> None:
        self.loggers = loggers

    @classmethod
    def open(cls, cfg: DictConfig, run_dir: Path, step: int, enabled: bool) -> RunLoggers:
        """Start each of trainer.loggers for a run at `step` (0, or where it resumes)."""
        if not enabled:
            return cls([])
        made: list[Logger] = []
        for name in cfg.trainer.loggers:
            if name == "tensorboard":
                made.append(TensorBoardLogger(Path(run_dir) / "tensorboard", step))
            elif name == "wandb":
                made.append(WandbLogger(Path(run_dir), cfg))
        return cls(made)

    def record(self, record: dict[str, Any]) -> None:
        """The chart values of a metrics.jsonl record, at its step."""
        values = scalars(record)
        if values and "step" in record:
            for logger in self.loggers:
                logger.scalars(values, int(record["step"]))

    def translations(
        self, step: int, sources: list[str], references: list[str], hypotheses: list[str]
    ) -> None:
        """The first SHOWN_TRANSLATIONS dev sentences: source, reference, hypothesis."""
        rows = list(zip(sources, references, hypotheses, strict=True))[:SHOWN_TRANSLATIONS]
        if rows:
            for logger in self.loggers:
                logger.translations(rows, step)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()
        self.loggers = []
