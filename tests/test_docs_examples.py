"""Every Python example in the docs and the README runs, as a reader would run it.

Each page's fenced blocks are taken in order. A block whose first line names a file
(`# mycell.py`, `# tests/test_mycell.py`) is written to that file; the entry points a
page's TOML blocks declare are registered as installing the package would; the other
blocks run as scripts, then the page's test files' `test_*` functions. The working
folder holds `runs/en_de`, a tiny model trained on real Multi30k, and `hubconf.py`, as
a clone of the repository would. Training examples run with the tiny model's sizes
and step count appended to their overrides (the examples train for minutes).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import tomllib
from _models import TINY

import seq2seq
from seq2seq import registry

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
FILE_LINE = re.compile(r"^# ((?:tests/)?\w+\.py)\n")
PAGES = [
    page
    for page in [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]
    if "```python" in page.read_text(encoding="utf-8")
]


def page_blocks(page: Path) -> list[tuple[str, str, int]]:
    """(language, code, first line number) of each fenced block."""
    text = page.read_text(encoding="utf-8")
    return [
        (m.group(1), m.group(2), text.count("\n", 0, m.start()) + 2) for m in FENCE.finditer(text)
    ]


def declared_entry_points(toml: str) -> list[tuple[str, str, str]]:
    """(group, name, "module:attribute") of each entry point a pyproject block declares."""
    tables = tomllib.loads(toml).get("project", {}).get("entry-points", {})
    return [
        (group, name, target) for group, items in tables.items() for name, target in items.items()
    ]


def test_every_page_with_python_is_covered():
    names = {page.name for page in PAGES}
    assert {"python-api.md", "plugins.md", "README.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_examples_run(page, attention_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "en_de").symlink_to(attention_run)
    (tmp_path / "hubconf.py").symlink_to(REPO / "hubconf.py")
    compose = seq2seq.load_config
    monkeypatch.setattr(
        seq2seq,
        "load_config",
        lambda exp=None, overrides=(): compose(
            exp, [*overrides, *TINY, "model.tie_embeddings=none", "trainer.max_steps=10"]
        ),
    )
    scripts, test_files, entry_points, modules = [], [], [], []
    for language, code, line in page_blocks(page):
        if language == "toml":
            entry_points += declared_entry_points(code)
        elif language == "python":
            named = FILE_LINE.match(code)
            if named is None:
                scripts.append((code, line))
                continue
            path = tmp_path / named.group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code, encoding="utf-8")
            (test_files if path.parent.name == "tests" else modules).append(path.stem)
            if path.parent.name == "tests":
                test_files[-1] = path
    registered = []
    try:
        for group, name, target in entry_points:
            module, _, attribute = target.partition(":")
            if module not in modules:
                continue  # a snippet of a pyproject whose package the page does not show
            registry.register(group, name, getattr(importlib.import_module(module), attribute))
            registered.append((group, name))
        for code, line in scripts:
            exec(compile(code, f"{page.name}:{line}", "exec"), {"__name__": "__main__"})
        for path in test_files:
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            tests = [f for name, f in vars(module).items() if name.startswith("test_")]
            assert tests, f"{path.name} from {page.name} has no tests"
            for test in tests:
                test()
    finally:
        for group, name in registered:
            registry.unregister(group, name)
        for name in modules:
            sys.modules.pop(name, None)
    capsys.readouterr()
