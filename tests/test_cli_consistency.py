"""Every command follows the same conventions: `--version`, defaults in `--help`, no
abbreviated flags, a mistyped flag answered in one line with the flag it meant, and a
wrong `--device` or `--split` named with the allowed values before any model loads.

Commands run in-process through their `main` (as their console script calls it, with
the command line in sys.argv); one case runs a real process to show that no traceback
reaches the user.
"""

from __future__ import annotations

import configparser
import importlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import seq2seq
from seq2seq.hardware import available_devices

REPO_ROOT = Path(__file__).resolve().parents[1]

# Commands run with `python -m` (not console scripts): their name, and their main.
MODULE_COMMANDS = {
    "python -m seq2seq.plugins": "seq2seq.commands.plugins:main",
    "python -m seq2seq.bench": "seq2seq.commands.bench:main",
    "python -m seq2seq.diagnose": "seq2seq.commands.diagnose:main",
    "python data_scripts/prepare.py": "seq2seq.commands.prepare:main",
}


def console_scripts() -> dict[str, str]:
    """setup.cfg's console scripts, name → "module:function": a new command is covered
    as soon as it is declared there."""
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg", encoding="utf-8")
    lines = config["options.entry_points"]["console_scripts"].strip().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip())
    return {name.strip(): target.strip() for name, target in pairs}


SCRIPTS = console_scripts()
COMMANDS = {**SCRIPTS, **MODULE_COMMANDS}


def entry(target: str) -> Callable:
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def run(name: str, argv: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    """A command run as from its console script: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [name, *argv])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        sys.exit(entry(COMMANDS[name])())  # some mains return their status
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def flat(text: str) -> str:
    """Help text with its wrapping undone, to find a phrase wherever lines break."""
    return " ".join(text.split())


# ------------------------------------------------------------------- --version
def test_the_console_scripts_are_read_from_setup_cfg():
    assert {"seq2seq-train", "seq2seq-translate", "seq2seq-bleu"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_answers_version(name, capsys, monkeypatch):
    code, out, err = run(name, ["--version"], capsys, monkeypatch)
    assert (code, out) == (0, f"{name} {seq2seq.__version__}\n"), err


# ---------------------------------------------------------------------- --help
HELP = {  # command line → phrases its help must hold (wrapping undone)
    ("seq2seq-translate", "--help"): [
        "--batch-size BATCH_SIZE sentences per batch (default: 128)",
        "--chunk-lines CHUNK_LINES lines read and translated at a time (default: 2000)",
        "--max-length MAX_LENGTH most tokens generated per sentence (default: 200)",
        "--precision {fp32,bf16,fp16,auto}",
        "fp16: autocast on a CUDA GPU (default: auto)",
        "[--search beam] (default: 5)",  # --beam-size: the strategy's own default
    ],
    ("seq2seq-bleu", "--help"): ["(train, dev, test) (default: test)", "(default: 128)"],
    ("seq2seq-tokenize", "train", "--help"): [
        "--vocab-size VOCAB_SIZE pieces in the vocabulary (default: 8000)",
        "--joint, --no-joint",
    ],
    ("seq2seq-results", "--help"): ["lowest first (default: run)"],
    ("seq2seq-sample", "--help"): ["--length LENGTH characters to generate (default: 200)"],
    ("python -m seq2seq.bench", "--help"): ["--steps STEPS timed training updates (default: 40)"],
}


@pytest.mark.parametrize("command", sorted(HELP), ids=" ".join)
def test_help_states_each_default_once(command, capsys, monkeypatch):
    name, *argv = command
    code, out, _ = run(name, argv, capsys, monkeypatch)
    assert code == 0
    for phrase in HELP[command]:
        assert phrase in flat(out), phrase
    assert "(default: None)" not in out and "(default: False)" not in out
    assert not re.search(r"\(default[^)]*\)\s*\(default", out), "a default stated twice"


def test_help_keeps_the_line_breaks_of_a_description(capsys, monkeypatch):
    _, out, _ = run("seq2seq-tokenize", ["--help"], capsys, monkeypatch)
    assert "\n  seq2seq-tokenize vocab --tokenizer RUN\n" in out


# ------------------------------------------------------ mistakes on the command line
MISTAKES = [
    # (command line, the one line that names the mistake)
    (
        ["seq2seq-translate", "--checkpoint", "x", "--beam", "5"],
        "unrecognized argument --beam (did you mean --beam-size?)",
    ),
    (
        ["seq2seq-translate", "--checkpoint", "x", "--beam-sise", "5"],
        "unrecognized argument --beam-sise (did you mean --beam-size?)",
    ),
    (
        ["seq2seq-translate", "--checkpoint", "x", "--out=y"],
        "unrecognized argument --out (did you mean --output?)",
    ),
    (
        ["seq2seq-tokenize", "encode", "--tokenizer", "x", "--sid", "tgt"],
        "unrecognized argument --sid (did you mean --side?)",
    ),
    (["seq2seq-results", "runs", "--jsn"], "unrecognized argument --jsn (did you mean --json?)"),
    (["seq2seq-average", "--checkpoint", "a", "-o", "b", "--zzz"], "unrecognized argument --zzz"),
    (
        ["seq2seq-translate", "--checkpoint", "x", "--precision", "fp8"],
        "argument --precision: invalid choice: 'fp8' (choose from 'fp32', 'bf16', 'fp16', 'auto')",
    ),
    (
        ["seq2seq-translate", "--checkpoint", "x", "--batch-size"],
        "argument --batch-size: expected one argument",
    ),
]


@pytest.mark.parametrize("argv, message", MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_a_mistake_is_one_line_with_a_pointer_to_help(argv, message, capsys, monkeypatch):
    name, *args = argv
    code, out, err = run(name, args, capsys, monkeypatch)
    assert code == 2 and out == ""
    assert err == f"{name}: error: {message}\nsee `{name} --help`\n"


# ---------------------------------------------------- --device and --split values
NO_CUDA = "no CUDA GPU is available here (torch reports none); available: cpu"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in.en"
    path.write_text("A man.\n", encoding="utf-8")
    return path


def device_commands(source: Path, device: str) -> list[list[str]]:
    """Every command that takes --device, given a checkpoint that does not exist: the
    device must be refused before the checkpoint is looked at."""
    missing = str(source.with_name("missing.pt"))
    return [
        ["seq2seq-translate", "--checkpoint", missing, "-i", str(source), "--device", device],
        ["seq2seq-bleu", "--checkpoint", missing, "--src", str(source), "--ref", str(source)]
        + ["--device", device],
        ["seq2seq-sample", "--checkpoint", missing, "--device", device],
    ]


def assert_one_error(err: str, expected: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].endswith(f"error: {expected}"), lines[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("index", range(3))
def test_device_cuda_without_a_gpu_is_named_before_loading(index, source, capsys, monkeypatch):
    name, *argv = device_commands(source, "cuda")[index]
    code, _, err = run(name, argv, capsys, monkeypatch)
    assert code == 2
    assert_one_error(err, f"--device cuda: {NO_CUDA}")


def test_device_bogus_names_the_devices_without_a_traceback(source):
    argv = device_commands(source, "bogus")[0][1:]
    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq.commands.translate", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    known = "unknown device (expected cpu, cuda, cuda:N or mps)"
    available = ", ".join(available_devices())
    assert_one_error(proc.stderr, f"--device bogus: {known}; available: {available}")


def test_split_typo_names_the_splits_before_loading(source, capsys, monkeypatch):
    missing = str(source.with_name("missing.pt"))
    code, _, err = run(
        "seq2seq-bleu", ["--checkpoint", missing, "--split", "tst"], capsys, monkeypatch
    )
    assert code == 2
    assert_one_error(
        err, "--split tst: no such split (did you mean test?); available: train, dev, test"
    )


def test_split_the_corpus_lacks_names_its_splits(monkeypatch):
    from seq2seq.commands.common import evaluation_set
    from seq2seq.data import corpora
    from seq2seq.data.corpora import ParallelSplit

    pair = ParallelSplit(["a"], ["b"])
    monkeypatch.setattr(corpora, "load_corpus", lambda *_: {"train": pair, "dev": pair})
    data = {"corpus": "files", "root": ".", "src_lang": "en", "tgt_lang": "de"}
    with pytest.raises(ValueError) as info:
        evaluation_set({"data": data}, None, None, "test", None)
    assert str(info.value) == "--split test: no such split in corpus 'files'; available: train, dev"
