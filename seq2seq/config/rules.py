"""What a config value may be beyond its type: ranges, choices and installed plugin names.

A rule rides on its schema field (`setting(rule)` in seq2seq.config.schema), so the schema
is the one place that says a key's type and its allowed values. `seq2seq.config.validate`
checks every rule right after Hydra composes the config, before any data work, and each
rule words its own message: the key, what is allowed, and the closest allowed name.
"""

from __future__ import annotations

import difflib
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from seq2seq import registry


class ValueRule(Protocol):
    def problem(self, key: str, value: Any) -> str | None:
        """None when `value` is allowed at `key`, else one sentence saying what is."""


def did_you_mean(value: Any, names: list[str], prefix: str = "") -> str:
    """' (did you mean 'x'?)' for the closest of `names` (each shown after `prefix`), or ''."""
    close = difflib.get_close_matches(str(value), names, n=1)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


@dataclass(frozen=True)
class Rule:
    """`test(value)` is true for allowed values; `allowed` says which in words."""

    test: Callable[[Any], bool]
    allowed: str
    choices: tuple[Any, ...] = ()  # the named values, for a did-you-mean

    def problem(self, key: str, value: Any) -> str | None:
        if self.test(value):
            return None
        hint = did_you_mean(value, [str(c) for c in self.choices]) if isinstance(value, str) else ""
        return f"{key} must be {self.allowed}, got {value!r}{hint}"


def _nullable(test: Callable[[Any], bool], allowed: str, off: str | None) -> Rule:
    """`test` for values; with `off`, null is allowed too and means `off`."""
    return Rule(
        lambda v: (off is not None and v is None) or (v is not None and test(v)),
        allowed + (f", or null ({off})" if off else ""),
    )


def whole(low: int, off: str | None = None) -> Rule:
    """A whole number >= low."""
    return _nullable(lambda v: v >= low, f"a whole number >= {low}", off)


def number(
    low: float,
    high: float = math.inf,
    brackets: str = "[)",
    off: str | None = None,
    allowed: str | None = None,
) -> Rule:
    """A number between low and high; `brackets` says which ends are included ("[)": low
    but not high). `allowed` replaces the generated wording (e.g. "a number of minutes > 0")."""
    low_ok = (lambda v: v >= low) if brackets[0] == "[" else (lambda v: v > low)
    high_ok = (lambda v: v <= high) if brackets[1] == "]" else (lambda v: v < high)
    if allowed is None:
        bound = ">=" if brackets[0] == "[" else ">"
        whole_range = f"{brackets[0]}{low:g}, {high:g}{brackets[1]}"
        allowed = f"a number {bound} {low:g}" if high == math.inf else f"a number in {whole_range}"
    return _nullable(lambda v: low_ok(v) and high_ok(v), allowed, off)


def one_of(*choices: Any) -> Rule:
    return Rule(lambda v: v in choices, "one of " + ", ".join(map(str, choices)), choices)


def _is_device(name: Any) -> bool:
    if name == "auto":
        return True
    try:
        torch.device(name)
    except (RuntimeError, TypeError):
        return False
    return True


# Whether this machine has the device is checked when training starts (seq2seq.training).
DEVICE = Rule(_is_device, "cpu, cuda, cuda:N or auto (a torch device name)")


@dataclass(frozen=True)
class Plugin:
    """A name installed in an entry-point group (plugins too), looked up without importing
    any plugin; the message is the registry's, which lists what is installed."""

    group: str  # e.g. "seq2seq.cells"

    def problem(self, key: str, value: Any) -> str | None:
        if value in {info.name for info in registry.available(self.group)}:
            return None
        return f"{key}: {registry.unknown_message(self.group, str(value))}"


# Where training metrics go besides metrics.jsonl (seq2seq.training.loggers), and the
# package each needs.
LOGGER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


@dataclass(frozen=True)
class Loggers:
    """A list of logger names, each known and installed: a missing package is a config
    mistake found before any data work, not an ImportError after it."""

    packages: dict[str, str]  # name -> the module it imports

    def problem(self, key: str, value: Any) -> str | None:
        names = list(self.packages)
        unknown = [v for v in value if v not in self.packages]
        if unknown:
            hint = did_you_mean(unknown[0], names)
            return (
                f"{key} must be a list of: {', '.join(names)} (or [] for none), "
                f"got {unknown[0]!r}{hint}"
            )
        for name in value:
            if importlib.util.find_spec(self.packages[name]) is None:
                return (
                    f"{key} includes {name}, but the {self.packages[name]} package is not "
                    f"installed: pip install {self.packages[name]}, or leave {name} out of {key}"
                )
        return None


LOGGERS = Loggers(LOGGER_PACKAGES)
