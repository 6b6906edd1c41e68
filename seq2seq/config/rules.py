"""What a config value may be, beyond its type: ranges, choices and installed plugin names.

A rule rides on its schema field (`setting(default, rule)`), so the schema is the one
place that says a key's type, default and allowed values; `seq2seq.config.validate`
checks every rule right after Hydra composes the config, before any data work.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seq2seq import registry


@dataclass(frozen=True)
class Rule:
    """`test(value)` is true for allowed values; `allowed` says which in words."""

    test: Callable[[Any], bool]
    allowed: str
    choices: tuple[Any, ...] = ()  # named values, for a did-you-mean

    def problem(self, key: str, value: Any) -> str | None:
        """None when `value` is allowed, else one sentence naming the key and what to use."""
        if self.test(value):
            return None
        message = f"{key} must be {self.allowed}, got {value!r}"
        return message + did_you_mean(value, [str(c) for c in self.choices])


def did_you_mean(value: Any, names: list[str]) -> str:
    """'; did you mean 'x'?' for the closest name, or '' when none is close."""
    close = difflib.get_close_matches(str(value), names, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def whole(low: int, off: str | None = None) -> Rule:
    """A whole number >= low; with `off`, null is allowed too and means `off`."""
    allowed = f"a whole number >= {low}" + (f", or null ({off})" if off else "")
    return Rule(lambda v: (off is not None and v is None) or (v is not None and v >= low), allowed)


def positive(allowed: str = "a number > 0", off: str | None = None) -> Rule:
    """A number > 0; with `off`, null is allowed too and means `off`."""
    allowed += f", or null ({off})" if off else ""
    return Rule(lambda v: (off is not None and v is None) or (v is not None and v > 0), allowed)


def within(low: float, high: float, high_open: bool = True, off: str | None = None) -> Rule:
    """A number in [low, high) (or [low, high]); with `off`, null too."""
    allowed = f"a number in [{low}, {high}{')' if high_open else ']'}"
    allowed += f", or null ({off})" if off else ""

    def test(v: Any) -> bool:
        if v is None:
            return off is not None
        return low <= v < high if high_open else low <= v <= high

    return Rule(test, allowed)


def one_of(*choices: Any) -> Rule:
    return Rule(lambda v: v in choices, "one of " + ", ".join(map(str, choices)), choices)


@dataclass(frozen=True)
class PluginRule:
    """A name installed in an entry-point group (plugins too), looked up without importing."""

    group: str  # e.g. "seq2seq.cells"
    noun: str  # how messages name one plugin of the group, e.g. "cell"

    def problem(self, key: str, value: Any) -> str | None:
        names = sorted({info.name for info in registry.available(self.group)})
        if value in names:
            return None
        return (
            f"{key}: unknown {self.noun} {value!r}. Available: {', '.join(names) or 'none'}"
            + did_you_mean(value, names)
            + " (`python -m seq2seq.plugins` lists the installed plugins)"
        )
