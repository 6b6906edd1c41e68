"""One check of a composed config, right after Hydra composes it and before any data work:
values left unset (???), the rules on the schema's fields (ranges, choices, installed
plugins) and the few rules that tie two keys together."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from seq2seq.config.errors import unknown_key
from seq2seq.config.rules import one_of

TASK = one_of("translation", "lm")


class ConfigError(ValueError):
    """The composed config has values that are unset or not allowed; the message names each."""


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError naming every key that is unset or not allowed, and what is allowed."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            f"config value(s) not set: {', '.join(missing)} (??? in the config). "
            f"Set each on the command line, e.g. {missing[0]}=VALUE"
        )
    problems = [TASK.problem("task", cfg.task)]
    for group in ("model", "trainer", "data", "tokenizer"):
        node = cfg.get(group)
        if isinstance(node, DictConfig):
            problems += _rule_problems(node, group)
    if not any(problems):
        problems += _averaging_problems(cfg.get("trainer"))
    problems = [p for p in problems if p]
    if problems:
        raise ConfigError("; ".join(problems))


def _rule_problems(node: DictConfig, path: str) -> list[str | None]:
    """The rule of every field of this node's schema (and its nested schemas)."""
    schema = OmegaConf.get_type(node)
    if not is_dataclass(schema):
        return []
    known = [spec.name for spec in fields(schema)]
    problems: list[str | None] = [
        unknown_key(f"{path}.{key}", known) for key in node if key not in known
    ]
    for spec in fields(schema):
        value = node[spec.name]
        key = f"{path}.{spec.name}"
        if isinstance(value, DictConfig):
            problems += _rule_problems(value, key)
        elif "rule" in spec.metadata:
            problems.append(spec.metadata["rule"].problem(key, value))
    return problems


def _averaging_problems(trainer: Any) -> list[str]:
    """trainer.average_last=N averages the final weights with the N-1 newest step_*.pt."""
    average = (trainer or {}).get("average_last") or 0
    if average < 2:
        return []
    every, keep = trainer.checkpoint_every, trainer.keep_last
    if every and (keep or 0) >= average - 1:
        return []
    return [
        f"trainer.average_last={average} averages the final weights with the "
        f"{average - 1} newest periodic checkpoints, so it needs "
        f"trainer.checkpoint_every > 0 and trainer.keep_last >= {average - 1} "
        f"(got {every} and {keep}); trainer.average_last=0 turns averaging off"
    ]
