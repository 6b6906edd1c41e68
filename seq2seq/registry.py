"""One registry for every pluggable part, fed by Python entry points.

Built-ins are declared as entry points in this project's own packaging
metadata, so they load exactly like third-party plugins. Loading is lazy:
only the entry point a config names is imported.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from seq2seq.contracts import framework_arguments

GROUPS = ("seq2seq.cells", "seq2seq.tokenizers", "seq2seq.decoders", "seq2seq.search")

# In-process registrations (notebooks, tests): group -> name -> object.
_LOCAL: dict[str, dict[str, Any]] = {}


class PluginError(LookupError):
    """A plugin could not be found, was ambiguous, or failed to import."""


class PluginOptionError(PluginError):
    """Options given to a plugin (from the config or the command line) do not fit it."""


@dataclass(frozen=True)
class PluginInfo:
    group: str
    name: str
    value: str  # "module:attr", or "<registered in-process>"
    distribution: str
    version: str = ""


def _short_group(group: str) -> str:
    return group.rsplit(".", 1)[-1]


_NOUNS = {
    "seq2seq.cells": "cell",
    "seq2seq.tokenizers": "tokenizer",
    "seq2seq.decoders": "decoder",
    "seq2seq.search": "search strategy",
}


def _noun(group: str) -> str:
    """'cell' for seq2seq.cells: how messages name one plugin of a group."""
    return _NOUNS.get(group, f"{_short_group(group)} plugin")


def _full_group(group: str) -> str:
    return group if group.startswith("seq2seq.") else f"seq2seq.{group}"


# Every seq2seq entry point, read in one scan of the installed distributions: each scan
# reads thousands of metadata files (30 ms here), and a command looks plugins up often.
_INSTALLED: dict[str, dict[str, list[EntryPoint]]] = {}


def refresh() -> None:
    """Forget the entry points read so far (after pip installs a plugin in this process)."""
    _INSTALLED.clear()


def _entry_points(group: str) -> dict[str, list[EntryPoint]]:
    if entry_points is not importlib.metadata.entry_points:  # replaced (tests): ask it
        return _by_name(entry_points(group=group))
    if not _INSTALLED:
        everything = entry_points()
        _INSTALLED.update({g: _by_name(everything.select(group=g)) for g in GROUPS})
    return _INSTALLED.get(group, {})


def _by_name(eps) -> dict[str, list[EntryPoint]]:
    found: dict[str, list[EntryPoint]] = {}
    for ep in eps:
        found.setdefault(ep.name, []).append(ep)
    return found


def _dist_name(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "unknown distribution"


def _dist_version(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return (getattr(dist, "version", None) or "") if dist is not None else ""


def _unique(eps: list[EntryPoint]) -> list[EntryPoint]:
    # The same distribution can be seen twice on sys.path (editable + build dir).
    seen: dict[tuple[str, str], EntryPoint] = {}
    for ep in eps:
        seen.setdefault((_dist_name(ep), ep.value), ep)
    return list(seen.values())


def register(group: str, name: str, obj: Any) -> None:
    """Register a plugin in-process (notebooks, tests); it shadows nothing and fails on a clash.

    `group` is a full group ("seq2seq.cells") or its short form ("cells").
    """
    group = _full_group(group)
    if group not in GROUPS:
        raise PluginError(f"unknown plugin group '{group}'; groups are: {', '.join(GROUPS)}")
    if name in _LOCAL.get(group, {}):
        raise PluginError(
            f"{_noun(group)} '{name}' is already registered in-process; "
            f"call seq2seq.registry.unregister({_short_group(group)!r}, {name!r}) first"
        )
    installed = _unique(_entry_points(group).get(name, []))
    if installed:
        owners = ", ".join(f"{_dist_name(ep)} ({ep.value})" for ep in installed)
        raise PluginError(
            f"{_noun(group)} '{name}' is already provided by {owners}; register under another name"
        )
    _LOCAL.setdefault(group, {})[name] = obj


def unregister(group: str, name: str) -> None:
    _LOCAL.get(_full_group(group), {}).pop(name, None)


def available(group: str) -> list[PluginInfo]:
    """Every plugin of a group, without importing any of them."""
    group = _full_group(group)
    infos = [
        PluginInfo(group, ep.name, ep.value, _dist_name(ep), _dist_version(ep))
        for eps in _entry_points(group).values()
        for ep in _unique(eps)
    ]
    infos += [
        PluginInfo(group, name, "<registered in-process>", "in-process")
        for name in _LOCAL.get(group, {})
    ]
    return sorted(infos, key=lambda info: (info.name, info.distribution))


def unknown_message(group: str, name: str) -> str:
    """'unknown cells 'x'. Available: ...' with the closest names, for a name not installed."""
    infos = available(group)
    names = sorted({i.name for i in infos})
    listing = ", ".join(f"{i.name} ({i.distribution})" for i in infos) or "none installed"
    message = f"unknown {_short_group(group)} '{name}'. Available: {listing}."
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        message += f" Did you mean: {', '.join(close)}?"
    else:
        message += (
            " If a plugin package provides it, pip install that package into this Python "
            "(`python -m seq2seq.plugins` lists what is installed)."
        )
    return message


def load(group: str, name: str) -> Any:
    """Import and return the object registered as `name` in `group`."""
    group = _full_group(group)
    if name in _LOCAL.get(group, {}):
        return _LOCAL[group][name]
    eps = _unique(_entry_points(group).get(name, []))
    if not eps:
        raise PluginError(unknown_message(group, name))
    if len(eps) > 1:
        owners = " and ".join(f"{_dist_name(ep)} ({ep.value})" for ep in eps)
        raise PluginError(
            f"{_noun(group)} '{name}' is claimed by more than one distribution: "
            f"{owners}. Uninstall one of them."
        )
    ep = eps[0]
    try:
        return ep.load()
    except Exception as exc:  # a broken plugin must not look like a seq2seq bug
        raise PluginError(
            f"{_noun(group)} plugin '{name}' (entry point '{ep.value}' from "
            f"distribution '{_dist_name(ep)}') failed to import: {type(exc).__name__}: {exc}"
        ) from exc


# ------------------------------------------------------------------ options

_EMPTY = inspect.Parameter.empty
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_SETTABLE = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _describe_parameter(p: inspect.Parameter) -> str:
    return f"{p.name} (required)" if p.default is _EMPTY else f"{p.name}={p.default!r}"


def _type_hints(factory: Any) -> dict[str, Any]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: skip the type check, never fail on it
        return {}


def _matches(value: Any, expected: Any) -> bool:
    """Whether a config value fits a simple annotation; anything unusual is not checked."""
    if expected is Any:
        return True
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(expected))
    if origin is typing.Literal:
        return value in typing.get_args(expected)
    if expected is type(None):
        return value is None
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected in (str, bool):
        return isinstance(value, expected)
    if origin in (list, tuple) or expected in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict or expected is dict:
        return isinstance(value, Mapping)
    return True


def _type_name(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(expected))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(expected))
    if expected is type(None):
        return "None (null)"
    return getattr(expected, "__name__", str(expected))


def accepted_options(
    factory: Any, fixed: tuple = (), framework: Mapping[str, Any] | None = None
) -> list[inspect.Parameter] | None:
    """The parameters a user may set, or None when the factory's signature cannot be read."""
    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = [p for p in params if p.kind in _POSITIONAL]
    taken = {p.name for p in positional[: len(fixed)]} | set(framework or {})
    return [p for p in params if p.kind in _SETTABLE and p.name not in taken]


def plugin_options(group: str, obj: Any) -> list[inspect.Parameter] | None:
    """The options a user may set on a loaded plugin of `group` (its contract says the rest).

    None when the factory's signature cannot be read.
    """
    group = _full_group(group)
    positional, keyword = framework_arguments(group)
    factory = getattr(obj, "train", None) if group == "seq2seq.tokenizers" else obj
    return accepted_options(factory, positional, dict.fromkeys(keyword))


def validate_options(
    kind: str,
    name: str,
    factory: Any,
    options: Mapping[str, Any] | None,
    fixed: tuple = (),
    framework: Mapping[str, Any] | None = None,
    source: str | None = None,
) -> None:
    """Check that `factory(*fixed, **framework, **options)` fits the factory's signature.

    `fixed` are the positional arguments seq2seq itself passes (e.g. input_size and
    hidden_size for a cell), `framework` the keyword arguments it passes; `options`
    come from the user. A mismatch raises PluginOptionError naming the bad option
    and listing the accepted ones with their defaults. Options whose parameter is
    annotated with a simple type (int, float, str, bool, Literal, Optional) are
    type-checked too. Factories whose signature cannot be read are not checked.
    `source` names where users set the options (e.g. "model.cell_options").
    """
    options = dict(options or {})
    framework = dict(framework or {})
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    label = f"{kind} '{name}'" + (f" ({source})" if source else "")
    params = list(signature.parameters.values())
    names = {p.name for p in params}
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    var_positional = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    positional = [p for p in params if p.kind in _POSITIONAL]
    settable = accepted_options(factory, fixed, framework) or []
    settable_names = [p.name for p in settable]
    accepted = ", ".join(_describe_parameter(p) for p in settable) or "none"
    where = getattr(factory, "__qualname__", repr(factory))

    if len(fixed) > len(positional) and not var_positional:
        raise PluginOptionError(
            f"{label}: {where}{signature} cannot take the {len(fixed)} positional arguments "
            f"seq2seq passes to every {kind}. Fix the plugin's signature (see the "
            "Protocols in seq2seq.contracts)."
        )
    if not var_keyword:
        refused = [key for key in framework if key not in names]
        if refused:
            raise PluginOptionError(
                f"{label}: {where}{signature} does not accept '{refused[0]}', which seq2seq "
                f"passes to every {kind}. Fix the plugin: add a '{refused[0]}' parameter "
                "(or **kwargs)."
            )
    taken = {p.name for p in positional[: len(fixed)]} | set(framework)
    clash = sorted(key for key in options if key in taken)
    if clash:
        raise PluginOptionError(
            f"{label}: '{clash[0]}' is set by seq2seq itself and cannot be given as an option. "
            f"Accepted options: {accepted}."
        )
    if not var_keyword:
        unknown = [key for key in options if key not in settable_names]
        if unknown:
            described = []
            for key in unknown:
                close = difflib.get_close_matches(key, settable_names, n=1)
                described.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
            plural = "s" if len(unknown) > 1 else ""
            raise PluginOptionError(
                f"{label}: unknown option{plural} {', '.join(described)}. "
                f"Accepted options: {accepted}."
            )
    missing = [p.name for p in settable if p.default is _EMPTY and p.name not in options]
    if missing:
        raise PluginOptionError(
            f"{label}: required option '{missing[0]}' is not set. Accepted options: {accepted}."
        )
    try:
        signature.bind(*fixed, **framework, **options)
    except TypeError as exc:
        raise PluginOptionError(f"{label}: {exc}. Accepted options: {accepted}.") from None
    hints = _type_hints(factory)
    for key, value in options.items():
        expected = hints.get(key)
        if expected is not None and not _matches(value, expected):
            raise PluginOptionError(
                f"{label}: option '{key}' must be {_type_name(expected)}, got {value!r} "
                f"({type(value).__name__}). Accepted options: {accepted}."
            )
