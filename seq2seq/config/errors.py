"""One line for each config mistake that Hydra or OmegaConf refuses while composing (or
while `validate` fits a config built without Hydra to its schema): an unknown key (with a
did-you-mean and the keys there are), a value of the wrong type (with what is allowed), a
config group option that does not exist. Hydra's own wording suits untyped configs, e.g.
`+model.cel=gru` for a misspelt key, which a typed schema refuses."""

from __future__ import annotations

import typing
from dataclasses import fields, is_dataclass
from typing import Any

from hydra.errors import MissingConfigException
from omegaconf import DictConfig
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
    ValidationError,
)

from seq2seq.config.rules import did_you_mean
from seq2seq.config.schema import SCHEMAS

TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def composition_error_message(exc: BaseException) -> str:
    """The mistake behind an exception from composing the config, in one line."""
    cause = exc.__cause__ if isinstance(exc.__cause__, OmegaConfBaseException) else exc
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
        return _unknown_key(cause)
    if isinstance(cause, ValidationError) and is_dataclass(cause.object_type):
        return _wrong_type(cause)
    if isinstance(exc, MissingConfigException):
        return _missing_option(str(exc))
    return _first_line(getattr(cause, "msg", None) or str(cause))


def unknown_key(full_key: str, known: list[str]) -> str:
    """'unknown config key ...' with the closest of the `known` keys and the whole list."""
    parent, _, key = full_key.rpartition(".")
    prefix = f"{parent}." if parent else ""
    listing = f"; {parent or 'the config'} has: {', '.join(known)}" if known else ""
    return f"unknown config key '{full_key}'{did_you_mean(key, known, prefix)}{listing}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _unknown_key(exc: OmegaConfBaseException) -> str:
    if is_dataclass(exc.object_type):
        known = [f.name for f in fields(exc.object_type)]
    elif isinstance(exc.parent_node, DictConfig):
        known = [str(k) for k in exc.parent_node]
    else:
        known = []
    return unknown_key(str(exc.full_key or exc.key), known)


def _wrong_type(exc: ValidationError) -> str:
    spec = {f.name: f for f in fields(exc.object_type)}.get(str(exc.key))
    if spec is None:
        return _first_line(exc.msg)
    rule = spec.metadata.get("rule")
    allowed = getattr(rule, "allowed", None) or _type_name(
        typing.get_type_hints(exc.object_type)[spec.name]
    )
    return f"{exc.full_key} must be {allowed}, got {exc.value!r}"


def _type_name(annotation: Any) -> str:
    args = typing.get_args(annotation)
    if type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return f"{_type_name(inner)}, or null"
    return TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _missing_option(text: str) -> str:
    """Hydra's 'Could not find ... Available options in ...' without its search path and
    without the schema entries, which are not options to choose."""
    head, _, rest = text.partition("Available options in")
    words = rest.split("Config search path:")[0].split()
    schemas = {name for _, name in SCHEMAS}
    options = [w for w in words[1:] if w not in schemas]
    listing = f"; available in {words[0].rstrip(':')}: {', '.join(options)}" if words else ""
    return _first_line(head) + listing
