"""Composing a training config from Python, exactly as the command line does."""

from __future__ import annotations

from collections.abc import Sequence

from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from omegaconf import DictConfig

from seq2seq.config.errors import composition_error_message
from seq2seq.config.validation import ConfigError, validate


def load_config(exp: str | None = None, overrides: Sequence[str] = ()) -> DictConfig:
    """The config `python -m seq2seq.train +exp=EXP OVERRIDES…` trains with, checked.

    `exp` names a recipe (en_de, en_es, …); `overrides` are Hydra overrides such as
    "trainer.max_time=12". A mistake raises ConfigError with the command line's message.
    """
    given = [*([f"+exp={exp}"] if exp else []), *overrides]
    try:
        with initialize_config_module(config_module="seq2seq.conf", version_base="1.3"):
            cfg = compose(config_name="config", overrides=given)
    except HydraException as exc:
        raise ConfigError(composition_error_message(exc)) from None
    validate(cfg)
    return cfg
