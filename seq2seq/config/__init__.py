"""The config schema: typed dataclasses for every config group (checked by Hydra while it
composes), rules for ranges, choices and plugin names (checked by `validate` right after),
and one-line messages for the mistakes Hydra itself refuses."""

from seq2seq.config.compose import load_config
from seq2seq.config.errors import composition_error_message
from seq2seq.config.schema import register_schemas
from seq2seq.config.validation import ConfigError, validate

__all__ = [
    "ConfigError",
    "composition_error_message",
    "load_config",
    "register_schemas",
    "validate",
]
