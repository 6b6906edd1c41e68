"""The config schema (seq2seq.config): every recipe composes and validates, and each kind
of config mistake is reported by the real command in one `error:` line (the key, what is
allowed, the closest allowed name), with exit status 2, no traceback, and before any data
work: the data folder is empty and the data cache stays untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig, OmegaConf

from seq2seq.config import ConfigError, validate

RECIPES = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "exp").glob("*.yaml"))


def recipe(name: str, overrides: list[str] = ()) -> DictConfig:
    with initialize_config_module(config_module="seq2seq.conf", version_base="1.3"):
        return compose(config_name="config", overrides=[f"+exp={name}", *overrides])


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_composes_and_validates(name):
    cfg = recipe(name)
    validate(cfg)
    assert OmegaConf.get_type(cfg.trainer).__name__.endswith("TrainerConfig")


def test_a_config_built_in_python_gets_the_same_checks():
    plain = OmegaConf.create(OmegaConf.to_container(recipe("en_de_fixed")))
    validate(plain)  # fitted to the translation schema: typed from now on
    assert OmegaConf.get_type(plain.trainer).__name__ == "TrainerConfig"
    wrong_type = OmegaConf.create(OmegaConf.to_container(recipe("en_de_fixed")))
    wrong_type.trainer.max_steps = "abc"
    with pytest.raises(ConfigError, match="trainer.max_steps must be a whole number >= 1"):
        validate(wrong_type)
    misspelt = OmegaConf.create(OmegaConf.to_container(recipe("hello")))
    misspelt.model.hiden_size = 8
    with pytest.raises(ConfigError, match=r"did you mean 'model.hidden_size'\?"):
        validate(misspelt)
    del misspelt["trainer"]
    with pytest.raises(ConfigError, match="task=lm needs the config group.*: trainer"):
        validate(misspelt)


def test_keys_added_with_a_plus_are_checked_too():
    with pytest.raises(ConfigError, match=r"unknown config key 'model.cel' \(did you mean"):
        validate(recipe("en_de", ["+model.cel=gru"]))


MISTAKES = [
    ("trainer.lr=-1", "error: trainer.lr must be a number > 0 (e.g. 0.001), got -1.0"),
    (
        "trainer.max_steps=abc",
        "error: trainer.max_steps must be a whole number >= 1, or null (no limit), got 'abc'",
    ),
    ("model.cel=gru", "error: unknown config key 'model.cel' (did you mean 'model.cell'?); "),
    (
        "trainer.max_step=5",
        "error: unknown config key 'trainer.max_step' (did you mean 'trainer.max_steps'?); ",
    ),
    ("model.cell=gruu", "error: model.cell: unknown cells 'gruu'. Available: elman ("),
    ("model.decoder=bahdanou", "error: model.decoder: unknown decoders 'bahdanou'. Available:"),
    ("tokenizer.type=sentencepeice", "error: tokenizer.type: unknown tokenizers"),
    ("data=nope", "error: In 'config': Could not find 'data/nope'; available in 'data': files,"),
]
HINTS = {
    "model.cell=gruu": "Did you mean: gru?",
    "model.decoder=bahdanou": "Did you mean: bahdanau?",
    "tokenizer.type=sentencepeice": "Did you mean: sentencepiece?",
}


@pytest.mark.parametrize("override,expected", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_the_command_reports_a_config_mistake_in_one_line_before_any_data_work(
    tmp_path, override, expected
):
    empty_data, cache, run_dir = tmp_path / "data", tmp_path / "cache", tmp_path / "run"
    empty_data.mkdir()
    env = {**os.environ, "SEQ2SEQ_DATA": str(empty_data), "SEQ2SEQ_OFFLINE": "1"}
    env.pop("HYDRA_FULL_ERROR", None)  # it would make Hydra print the stack trace
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seq2seq.train",
            "+exp=en_de",
            "trainer.max_steps=2",
            f"data.cache_dir={cache}",
            override,
            f"hydra.run.dir={run_dir}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(expected), result.stderr
    assert HINTS.get(override, "") in errors[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not cache.exists() and not (run_dir / "checkpoints").exists()
    assert list(empty_data.iterdir()) == []
