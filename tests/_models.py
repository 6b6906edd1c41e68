"""Small real-data trainings shared by the tests (Hydra compose API, no subprocess)."""

from __future__ import annotations

import os
from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from seq2seq.commands.train import train

TINY = [
    "data.train_subset=2000",
    "data.dev_subset=100",
    "tokenizer.vocab_size=500",
    "model.embedding_size=32",
    "model.hidden_size=64",
    "model.encoder_hidden_size=32",
    "trainer.max_steps=40",
    "trainer.eval_every=20",
    "trainer.checkpoint_every=20",
    "trainer.log_every=1",
    "trainer.eval_sentences=50",
    "trainer.batch_tokens=1500",
    "trainer.precision=fp32",  # not the default auto: the same numbers on a bf16 CPU or GPU
]


# A tiny model pinned independently of the experiment's recipe (fast, and stable when
# recipes change).
PINNED_TINY_MODEL = [
    "model.cell=gru",
    "model.decoder=fixed",
    "model.tie_embeddings=none",
    "model.bidirectional=false",
    "model.embedding_size=16",
    "model.hidden_size=16",
    "model.encoder_hidden_size=16",
]


def make_config(overrides: list[str], exp: str = "en_de_fixed") -> DictConfig:
    os.environ.setdefault(
        "SEQ2SEQ_DATA", str(Path(__file__).resolve().parents[1].parent / "shared" / "data")
    )
    with initialize_config_module(config_module="seq2seq.conf", version_base="1.3"):
        return compose(config_name="config", overrides=[f"+exp={exp}", *overrides])


def train_tiny(run_dir: Path, overrides: list[str] = (), exp: str = "en_de_fixed") -> Path:
    """Train a tiny model on real data into run_dir; later overrides win."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    train(make_config([*TINY, *overrides], exp), run_dir)
    return run_dir
