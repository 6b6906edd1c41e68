"""`python -m seq2seq.plugins`: every installed plugin, by group, with its distribution.

Each plugin is imported (that is the only way to read its description), one at a
time: a plugin that fails to import is listed as ``BROKEN: <error>`` and the
others are listed as usual. Two distributions claiming one name are both listed
and marked ``CONFLICT``. The exit status is 1 when any plugin is broken or in
conflict, else 0. ``-v`` adds each entry point and the options it accepts.
"""

from __future__ import annotations

import inspect
import json
import sys
from dataclasses import asdict, dataclass

from seq2seq import registry
from seq2seq.commands.parsing import command_parser


@dataclass(frozen=True)
class PluginRow:
    group: str
    name: str
    distribution: str
    version: str
    value: str
    description: str
    status: str  # "ok", "broken" or "conflict"
    options: str = ""  # the options a user may set, with defaults


def options_of(group: str, obj: object) -> str:
    """The user-settable options of a loaded plugin, e.g. "activation='tanh'"."""
    params = registry.plugin_options(group, obj)
    if params is None:
        return "?"
    return ", ".join(registry._describe_parameter(p) for p in params) or "none"


def describe(obj: object) -> str:
    """First line of the object's own docstring, else of its module's docstring."""
    doc = getattr(obj, "__doc__", None) if not isinstance(obj, (str, bytes)) else None
    if inspect.isclass(obj) and doc == getattr(object, "__doc__", None):
        doc = None
    if not doc:
        module = sys.modules.get(getattr(obj, "__module__", "") or "")
        doc = getattr(module, "__doc__", None)
    if not doc:
        return "(no description: add a docstring)"
    return inspect.cleandoc(doc).strip().splitlines()[0]


def _load_row(group: str, ep, conflict_with: list[str]) -> PluginRow:
    distribution = registry._dist_name(ep)
    version = registry._dist_version(ep)
    status = "ok"
    options = ""
    try:
        obj = ep.load()
        description = describe(obj)
        options = options_of(group, obj)
    except (Exception, SystemExit) as exc:  # one broken plugin must not hide the others
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        description = f"BROKEN: {type(exc).__name__}" + (f": {detail}" if detail else "")
        status = "broken"
    if conflict_with:
        description = f"CONFLICT (also claimed by {', '.join(conflict_with)}): {description}"
        status = "conflict"
    return PluginRow(group, ep.name, distribution, version, ep.value, description, status, options)


def collect(groups: tuple[str, ...] = registry.GROUPS) -> list[PluginRow]:
    """Every entry point (and in-process registration) of the given groups, loaded one by one."""
    rows = []
    for group in groups:
        group = registry._full_group(group)
        for _name, eps in sorted(registry._entry_points(group).items()):
            eps = registry._unique(eps)
            for ep in eps:
                others = [registry._dist_name(o) for o in eps if o is not ep]
                rows.append(_load_row(group, ep, others))
        for name, obj in sorted(registry._LOCAL.get(group, {}).items()):
            rows.append(
                PluginRow(
                    group,
                    name,
                    "in-process",
                    "",
                    "<registered in-process>",
                    describe(obj),
                    "ok",
                    options_of(group, obj),
                )
            )
    return rows


def render(rows: list[PluginRow], groups: tuple[str, ...], verbose: bool = False) -> str:
    lines = []
    for group in groups:
        group = registry._full_group(group)
        members = [r for r in rows if r.group == group]
        lines.append(f"{group}")
        if not members:
            lines.append("  (none installed)")
        name_width = max([len(r.name) for r in members] + [4])
        dists = [f"{r.distribution} {r.version}".strip() for r in members]
        dist_width = max([len(d) for d in dists] + [12])
        for row, dist in zip(members, dists, strict=True):
            lines.append(f"  {row.name:<{name_width}}  {dist:<{dist_width}}  {row.description}")
            if verbose:
                pad = " " * (name_width + dist_width + 6)
                lines.append(f"{pad}entry point: {row.value}")
                if row.options:
                    lines.append(f"{pad}options: {row.options}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = command_parser(
        "python -m seq2seq.plugins",
        "List every installed seq2seq plugin: group, name, distribution, description.",
    )
    parser.add_argument(
        "groups",
        nargs="*",
        metavar="GROUP",
        help="only these groups (cells, tokenizers, decoders, search); default: all",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per plugin instead of the list"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also show entry points and options"
    )
    args = parser.parse_args(argv)
    groups = tuple(registry._full_group(g) for g in args.groups) or registry.GROUPS
    unknown = [g for g in groups if g not in registry.GROUPS]
    if unknown:
        parser.error(
            f"unknown group '{unknown[0]}'; groups are: "
            + ", ".join(registry._short_group(g) for g in registry.GROUPS)
        )
    rows = collect(groups)
    if args.json:
        sys.stdout.write("".join(json.dumps(asdict(r)) + "\n" for r in rows))
    else:
        sys.stdout.write(render(rows, groups, args.verbose))
    return 1 if any(r.status != "ok" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
