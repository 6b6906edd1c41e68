"""What a server serves and how: models, limits, batching, access. Read from the command
line or a small YAML file, and checked with pydantic so that a mistake names its key."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ModelEntry(BaseModel):
    """One served model: where it is, where it runs, and its search defaults."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str  # a model folder, a run folder or a checkpoint file
    device: str = "cpu"
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "auto"  # bf16 where native, else fp32
    search: Literal["greedy", "beam", "sample"] = "greedy"
    beam_size: int = Field(5, ge=1, le=64)
    length_penalty: float = 1.0


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_texts: int = Field(64, ge=1)  # texts per request
    max_chars: int = Field(1000, ge=1)  # characters per text
    max_body_bytes: int = Field(1_000_000, ge=64)  # request body size
    timeout_s: float = Field(30.0, gt=0)  # per request, queueing included
    max_beam_size: int = Field(16, ge=1)
    max_nbest: int = Field(8, ge=1)


class Batching(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(32, ge=1)  # sentences decoded together
    max_wait_ms: float = Field(5.0, ge=0)  # how long a batch waits to fill
    enabled: bool = True  # off: each request is decoded alone, in arrival order


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, ModelEntry]
    limits: Limits = Limits()
    batching: Batching = Batching()
    api_key: str | None = None  # given through SEQ2SEQ_API_KEY or a file, never argv
    cors_origins: list[str] = []


def read_settings_file(path: str | Path) -> dict:
    """The YAML file's content, as a dict (checked by ServeSettings afterwards)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the server settings ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with a 'models' key")
    return data


def checked_settings(data: dict, where: str) -> ServeSettings:
    """ServeSettings from plain data; each mistake named by its key path."""
    try:
        return ServeSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise ValueError(f"{where}: {problems}") from None
