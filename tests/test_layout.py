"""The package's imports point down: commands on top, then the tasks (training, translation,
the character LM), then the config schema, then the building blocks (network, data,
plugins), then the registry.

A reader can then understand any folder without the ones above it, and a plugin author
can import the building blocks without pulling in the training loop or the command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "seq2seq"
SHIMS = {"seq2seq.train", "seq2seq.plugins", "seq2seq.bench", "seq2seq.diagnose"}
FACADE = "seq2seq"  # the package's __init__: the public API, re-exported from every layer
TASKS = (
    "seq2seq.training",
    "seq2seq.translation",
    "seq2seq.runtime",
    "seq2seq.lm",
    "seq2seq.serving",
)
BLOCKS = (
    "seq2seq.nn",
    "seq2seq.data",
    "seq2seq.cells",
    "seq2seq.decoders",
    "seq2seq.search",
    "seq2seq.tokenizers",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_main_block(node: ast.AST) -> bool:
    """`if __name__ == "__main__":`, which runs only for `python -m`, never on import."""
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def imported_modules(path: Path) -> set[str]:
    """Every seq2seq module a file imports, at module level or inside functions (not in a
    `python -m` block)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    tree.body = [node for node in tree.body if not _is_main_block(node)]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "seq2seq" or name.startswith("seq2seq.")}


def under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


IMPORTS = {module_name(p): imported_modules(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_the_package_uses_absolute_imports_only():
    relative = [
        module_name(p)
        for p in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]
    assert relative == []


@pytest.mark.parametrize("module", sorted(IMPORTS))
def test_imports_point_down(module):
    imports = IMPORTS[module]
    if not under(module, ("seq2seq.commands",)) and module not in SHIMS | {FACADE}:
        assert not {m for m in imports if under(m, ("seq2seq.commands",))}, "imports a command"
    if under(module, BLOCKS + ("seq2seq.registry", "seq2seq.checkpoint", "seq2seq.hardware")):
        upward = {m for m in imports if under(m, TASKS + ("seq2seq.testing", "seq2seq.config"))}
        assert not upward, f"a building block imports a task or the config schema: {sorted(upward)}"
    if under(module, ("seq2seq.config",)):  # the schema knows the blocks, not who trains
        upward = {m for m in imports if under(m, TASKS + ("seq2seq.testing",))}
        assert not upward, f"the config schema imports a task: {sorted(upward)}"
    if under(module, ("seq2seq.translation",)):
        assert not {m for m in imports if under(m, ("seq2seq.training", "seq2seq.lm"))}
        assert not {m for m in imports if under(m, ("seq2seq.runtime",))}, "the runtime is above"
    if under(module, ("seq2seq.runtime",)):  # numpy only: what it imports must not need torch
        heavy = {m for m in imports if under(m, ("seq2seq.nn", "seq2seq.training", "seq2seq.lm"))}
        assert not heavy, f"the numpy runtime imports torch code: {sorted(heavy)}"
    if under(module, ("seq2seq.training", "seq2seq.translation", "seq2seq.lm")):
        assert not {m for m in imports if under(m, ("seq2seq.serving",))}, "a task imports serving"
    if under(module, ("seq2seq.training",)):
        assert not {m for m in imports if under(m, ("seq2seq.lm",))}, "training imports the LM"
    if under(module, ("seq2seq.lm",)):
        assert "seq2seq.training.trainer" not in imports, "the LM imports the translation trainer"


def test_the_top_level_holds_only_a_handful_of_modules():
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(top) <= 10, top
    for shim in SHIMS:
        # `python -m seq2seq.train` and friends: three lines that hand over to a command
        source = (PACKAGE / (shim.split(".")[1] + ".py")).read_text(encoding="utf-8")
        assert "from seq2seq.commands." in source and len(source.splitlines()) <= 8
