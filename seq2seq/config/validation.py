"""One check of a whole config, right after Hydra composes it and before any data work:
values left unset (???), the rules on the schema's fields (ranges, choices, installed
plugins) and the rule that ties trainer keys together. A config built without Hydra (the
Python API) is first fitted to its task's schema, so it gets the same type checks."""

from __future__ import annotations

from dataclasses import fields, is_dataclass

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from seq2seq.config.errors import composition_error_message, unknown_key
from seq2seq.config.rules import one_of
from seq2seq.config.schema import TASK_SCHEMAS

TASK = one_of(*TASK_SCHEMAS)


class ConfigError(ValueError):
    """The config has keys that are unknown, unset or not allowed; the message names each
    and what is allowed."""


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError naming every key that is unknown, unset or not allowed, and what
    is allowed; return quietly for a config that training can use. A group built without
    Hydra (an untyped DictConfig) is replaced in `cfg` by its typed version."""
    problem = TASK.problem("task", cfg.get("task"))
    if problem:
        raise ConfigError(problem)
    absent = [
        group for group in TASK_SCHEMAS[cfg.task] if not isinstance(cfg.get(group), DictConfig)
    ]
    if absent:
        raise ConfigError(f"task={cfg.task} needs the config group(s): {', '.join(absent)}")
    for group, schema in TASK_SCHEMAS[cfg.task].items():
        if OmegaConf.get_type(cfg[group]) is dict:
            cfg[group] = _fitted(cfg, group, schema)
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            f"config value(s) not set: {', '.join(missing)} (??? in the config). "
            f"Set each on the command line, e.g. {missing[0]}=VALUE"
        )
    problems = [p for group in TASK_SCHEMAS[cfg.task] for p in _problems(cfg, group)]
    problems = problems or _averaging_problems(cfg)
    if problems:
        raise ConfigError("; ".join(problems))


def _fitted(cfg: DictConfig, group: str, schema: type) -> DictConfig:
    """`cfg[group]` merged onto its schema: unknown keys and values of the wrong type are
    refused (the messages name the full key, e.g. trainer.lr)."""
    try:
        typed = OmegaConf.merge({group: OmegaConf.structured(schema)}, {group: cfg[group]})
    except OmegaConfBaseException as exc:
        raise ConfigError(composition_error_message(exc)) from None
    return typed[group]


def _problems(node: DictConfig, path: str) -> list[str]:
    """Unknown keys and broken rules under `node[path's last part]` (nested schemas too)."""
    parent, _, key = path.rpartition(".")
    value = node.get(key)
    schema = OmegaConf.get_type(value) if isinstance(value, DictConfig) else None
    if not is_dataclass(schema):
        return []
    known = [spec.name for spec in fields(schema)]
    problems = [unknown_key(f"{path}.{k}", known) for k in value if k not in known]
    for spec in fields(schema):
        if isinstance(value[spec.name], DictConfig) and is_dataclass(
            OmegaConf.get_type(value[spec.name])
        ):
            problems += _problems(value, f"{path}.{spec.name}")
        elif "rule" in spec.metadata:
            problems.append(spec.metadata["rule"].problem(f"{path}.{spec.name}", value[spec.name]))
    return [p for p in problems if p]


def _averaging_problems(cfg: DictConfig) -> list[str]:
    """trainer.average_last=N averages the final weights with the N-1 newest step_*.pt."""
    trainer = cfg.trainer
    average = trainer.get("average_last") or 0
    every, keep = trainer.checkpoint_every, trainer.keep_last
    if average < 2 or (every and (keep or 0) >= average - 1):
        return []
    return [
        f"trainer.average_last={average} averages the final weights with the "
        f"{average - 1} newest periodic checkpoints, so it needs "
        f"trainer.checkpoint_every > 0 and trainer.keep_last >= {average - 1} "
        f"(got {every} and {keep}); trainer.average_last=0 turns averaging off"
    ]
