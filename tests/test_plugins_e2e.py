"""The example plugins in plugins/, installed with pip as CI does, used through the public
entry points: discovery, the author kit, and training + translating end to end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import torch
from _models import train_tiny

from seq2seq import registry
from seq2seq.checkpoint import load_checkpoint
from seq2seq.testing import check_cell, check_search

PLUGINS = {
    "seq2seq-indrnn": "plugins/seq2seq-indrnn",
    "seq2seq-sampling": "plugins/seq2seq-sampling",
}
BUILTINS = ("elman", "gru", "lstm", "sentencepiece", "char", "word", "fixed", "greedy", "beam")


@pytest.fixture(scope="module", autouse=True)
def installed_plugins():
    missing = []
    for dist, folder in PLUGINS.items():
        try:
            distribution(dist)
        except PackageNotFoundError:
            missing.append(f"python -m pip install -e {folder}")
    if missing:
        pytest.fail(
            "the example plugins are not installed; run from the repository root:\n  "
            + "\n  ".join(missing),
            pytrace=False,
        )


def console_script(name: str) -> list[str]:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"console script {name} is not installed (pip install -e .)"
    return [found]


def test_plugins_command_lists_builtins_and_example_plugins():
    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq.plugins"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {tuple(line.split()[:2]) for line in proc.stdout.splitlines() if line.startswith("  ")}
    for name in BUILTINS:
        assert (name, "seq2seq-rnn") in rows, name
    assert ("indrnn", "seq2seq-indrnn") in rows
    assert ("topk_sample", "seq2seq-sampling") in rows
    indrnn = next(line for line in proc.stdout.splitlines() if line.split()[:1] == ["indrnn"])
    assert "IndRNN cell (Li et al. 2018)" in indrnn


def test_example_plugins_pass_the_author_kit():
    check_cell(registry.load("cells", "indrnn"))
    check_cell(registry.load("cells", "indrnn"), activation="tanh", recurrent_max=None)
    check_search(registry.load("search", "topk_sample"), top_k=5, seed=0)


@pytest.fixture(scope="module")
def indrnn_run(tmp_path_factory) -> Path:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_tiny(
            tmp_path_factory.mktemp("indrnn_run"),
            [
                "model.cell=indrnn",
                "+model.cell_options.activation=relu",
                "trainer.threads=1",
                "trainer.max_steps=20",
                "trainer.eval_every=20",
                "trainer.checkpoint_every=20",
            ],
        )
    finally:
        torch.set_num_threads(threads)


def test_trains_with_plugin_cell_and_translates_with_plugin_search(indrnn_run, tmp_path):
    checkpoint = indrnn_run / "checkpoints" / "best.pt"
    spec = load_checkpoint(checkpoint)["model_spec"]
    assert spec["cell"] == "indrnn" and spec["cell_options"] == {"activation": "relu"}
    lines = ["A man is riding a bike.", "", "Two dogs play in the snow.", "A girl.", "Hello"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [
        *console_script("seq2seq-translate"),
        "--checkpoint",
        str(indrnn_run),
        "--search",
        "topk_sample",
        "--search-option",
        "top_k=5",
        "--search-option",
        "seed=1",
        "--max-length",
        "30",
    ]
    proc = subprocess.run(
        command, input="\n".join(lines) + "\n", capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.split("\n")
    assert out[-1] == "" and len(out) - 1 == len(lines), proc.stdout
    assert out[1] == ""  # an empty line stays empty, in place
    assert any(line.strip() for line in out[:-1])
    again = subprocess.run(
        command, input="\n".join(lines) + "\n", capture_output=True, text=True, env=env, timeout=120
    )
    assert again.stdout == proc.stdout  # seeded sampling is reproducible

    bad = subprocess.run(
        [*command, "--search-option", "topp=0.9"],
        input="A dog.\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 2
    assert "unknown option 'topp' (did you mean 'top_p'?)" in bad.stderr
    assert "temperature=1.0" in bad.stderr  # the accepted options are listed
