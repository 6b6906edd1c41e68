"""Installs as a built wheel; configs are found from any working directory."""

import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points

import pytest


def test_builtins_are_registered_through_entry_points():
    for group, names in {
        "seq2seq.cells": {"elman", "gru", "lstm"},
        "seq2seq.tokenizers": {"sentencepiece", "char", "word"},
        "seq2seq.decoders": {"fixed"},
        "seq2seq.search": {"greedy", "beam"},
    }.items():
        assert names <= {ep.name for ep in entry_points(group=group)}


# What a wheel build reads. The build runs on a copy: building in the checkout would leave
# build/ (stale modules there end up in later wheels) and a seq2seq_rnn.egg-info that
# importlib.metadata would then see beside the installed distribution.
SOURCES = ("setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "seq2seq", "conf")


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory, repo_root):
    """The project built as a wheel and installed into a folder of its own."""
    build = tmp_path_factory.mktemp("wheel")
    source = build / "source"
    source.mkdir()
    for name in SOURCES:
        if (repo_root / name).is_dir():
            shutil.copytree(
                repo_root / name,
                source / name,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        else:
            shutil.copy2(repo_root / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(build),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = build.glob("seq2seq_rnn-*.whl")
    site = build / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    return site


def test_wheel_carries_configs_usable_from_any_directory(wheel_site, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(wheel_site)}
    check = (
        "import seq2seq, pathlib, importlib.metadata as md; "
        f"site = pathlib.Path({str(wheel_site)!r}); "
        "assert pathlib.Path(seq2seq.__file__).is_relative_to(site), seq2seq.__file__; "
        "(dist,) = md.distributions(path=[str(site)]); "
        "found = (dist.metadata['Name'], dist.version); "
        "assert found == ('seq2seq-rnn', seq2seq.__version__), found; "
        "assert {'gru', 'bahdanau', 'beam', 'char'} <= {ep.name for ep in dist.entry_points}"
    )
    subprocess.run([sys.executable, "-c", check], check=True, env=env, cwd=tmp_path)
    for exp, corpus in (("en_es", "tatoeba_en_es"), ("en_de", "multi30k")):
        result = subprocess.run(
            [sys.executable, "-m", "seq2seq.train", f"+exp={exp}", "--cfg", "job"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert f"corpus: {corpus}" in result.stdout
        assert "cell: lstm" in result.stdout and "decoder: bahdanau" in result.stdout
