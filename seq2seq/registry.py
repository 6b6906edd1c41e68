"""One registry for every pluggable part, fed by Python entry points.

Built-ins are declared as entry points in this project's own packaging
metadata, so they load exactly like third-party plugins. Loading is lazy:
only the entry point a config names is imported.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

GROUPS = ("seq2seq.cells", "seq2seq.tokenizers", "seq2seq.decoders", "seq2seq.search")

# In-process registrations (notebooks, tests): group -> name -> object.
_LOCAL: dict[str, dict[str, Any]] = {}


class PluginError(LookupError):
    """A plugin could not be found, was ambiguous, or failed to import."""


@dataclass(frozen=True)
class PluginInfo:
    group: str
    name: str
    value: str  # "module:attr", or "<registered in-process>"
    distribution: str


def _short_group(group: str) -> str:
    return group.rsplit(".", 1)[-1]


def _full_group(group: str) -> str:
    return group if group.startswith("seq2seq.") else f"seq2seq.{group}"


def _entry_points(group: str) -> dict[str, list[EntryPoint]]:
    found: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, []).append(ep)
    return found


def _dist_name(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "unknown distribution"


def _unique(eps: list[EntryPoint]) -> list[EntryPoint]:
    # The same distribution can be seen twice on sys.path (editable + build dir).
    seen: dict[tuple[str, str], EntryPoint] = {}
    for ep in eps:
        seen.setdefault((_dist_name(ep), ep.value), ep)
    return list(seen.values())


def register(group: str, name: str, obj: Any) -> None:
    """Register a plugin in-process; it shadows nothing and fails on a clash."""
    group = _full_group(group)
    if name in _LOCAL.get(group, {}) or name in _entry_points(group):
        raise PluginError(f"{_short_group(group)} '{name}' is already registered")
    _LOCAL.setdefault(group, {})[name] = obj


def unregister(group: str, name: str) -> None:
    _LOCAL.get(_full_group(group), {}).pop(name, None)


def available(group: str) -> list[PluginInfo]:
    """Every plugin of a group, without importing any of them."""
    group = _full_group(group)
    infos = [
        PluginInfo(group, ep.name, ep.value, _dist_name(ep))
        for eps in _entry_points(group).values()
        for ep in _unique(eps)
    ]
    infos += [
        PluginInfo(group, name, "<registered in-process>", "in-process")
        for name in _LOCAL.get(group, {})
    ]
    return sorted(infos, key=lambda info: (info.name, info.distribution))


def _unknown_message(group: str, name: str) -> str:
    infos = available(group)
    names = sorted({i.name for i in infos})
    listing = ", ".join(f"{i.name} ({i.distribution})" for i in infos) or "none installed"
    message = f"unknown {_short_group(group)} '{name}'. Available: {listing}."
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        message += f" Did you mean: {', '.join(close)}?"
    return message


def load(group: str, name: str) -> Any:
    """Import and return the object registered as `name` in `group`."""
    group = _full_group(group)
    if name in _LOCAL.get(group, {}):
        return _LOCAL[group][name]
    eps = _unique(_entry_points(group).get(name, []))
    if not eps:
        raise PluginError(_unknown_message(group, name))
    if len(eps) > 1:
        owners = " and ".join(f"{_dist_name(ep)} ({ep.value})" for ep in eps)
        raise PluginError(
            f"{_short_group(group)} '{name}' is claimed by more than one distribution: "
            f"{owners}. Uninstall one of them."
        )
    ep = eps[0]
    try:
        return ep.load()
    except Exception as exc:  # a broken plugin must not look like a seq2seq bug
        raise PluginError(
            f"{_short_group(group)} plugin '{name}' (entry point '{ep.value}' from "
            f"distribution '{_dist_name(ep)}') failed to import: {type(exc).__name__}: {exc}"
        ) from exc
