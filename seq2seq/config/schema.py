"""The typed schema of every config group: one dataclass per shape of `model`, `trainer`,
`data` and `tokenizer`, registered in Hydra's ConfigStore.

Each group's YAML starts with `defaults: [<schema name>, _self_]`, so Hydra checks every
value's type (and refuses unknown keys) while it composes the config. The YAML files keep
the default values, with the comments users read; a field here says only the key's type
and, as a rule (seq2seq.config.rules), its allowed values, which `seq2seq.config.validate`
checks. A field has a default here only where its YAML may leave the key out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from seq2seq.config.rules import DEVICE, LOGGERS, Plugin, ValueRule, number, one_of, whole
from seq2seq.data.corpora import CORPORA
from seq2seq.hardware import PRECISIONS
from seq2seq.nn.initialization import SCHEMES
from seq2seq.nn.model import TIE_CHOICES

SCHEDULES = ("none", "linear", "exponential", "inverse_sigmoid")


def setting(rule: ValueRule | None = None, default: Any = MISSING) -> Any:
    """A schema field with the rule for its values; the default stays in the YAML (MISSING)
    unless one is given here."""
    return field(default=default, metadata={"rule": rule} if rule else {})


PROBABILITY = number(0, 1)
CELL = Plugin("seq2seq.cells")
INIT = one_of(*SCHEMES)
LR = number(0, brackets="()", allowed="a number > 0 (e.g. 0.001)")
MINUTES = "a number of minutes > 0"


# ------------------------------------------------------------------------ model
@dataclass
class ModelConfig:
    """The translation model (`model/default.yaml`): the fields of nn.model.ModelSpec."""

    cell: str = setting(CELL)
    cell_options: dict[str, Any] = MISSING
    embedding_size: int = setting(whole(1))
    hidden_size: int = setting(whole(1))
    encoder_hidden_size: int | None = setting(whole(1, "model.hidden_size"))
    num_layers: int = setting(whole(1))
    bidirectional: bool = MISSING
    dropout: float = setting(PROBABILITY)
    embedding_dropout: float | None = setting(number(0, 1, off="model.dropout"))
    encoder_output_dropout: float | None = setting(number(0, 1, off="model.dropout"))
    variational_dropout: bool = MISSING
    tie_embeddings: str = setting(one_of(*TIE_CHOICES))
    decoder: str = setting(Plugin("seq2seq.decoders"))
    decoder_options: dict[str, Any] = MISSING
    fused: bool = MISSING
    compile_cell: Any = setting(one_of(False, True, "script", "compile"))
    init: str = setting(INIT)
    init_std: float = setting(number(0, brackets="()"))
    init_range: float = setting(number(0, brackets="()"))


@dataclass
class LMModelConfig:
    """The character language model (`model/char_lm.yaml`): the fields of lm.model.LMSpec."""

    cell: str = setting(CELL)
    cell_options: dict[str, Any] = MISSING
    embedding_size: int | None = setting(whole(0, "one-hot inputs"))
    hidden_size: int = setting(whole(1))
    num_layers: int = setting(whole(1))
    dropout: float = setting(PROBABILITY)
    fused: bool = MISSING
    init: str = setting(INIT)
    init_std: float = setting(number(0, brackets="()"))


# ---------------------------------------------------------------------- trainer
@dataclass
class ScheduledSamplingConfig:
    schedule: str = setting(one_of(*SCHEDULES))
    k: float = setting(number(0, brackets="()", allowed="a number of updates > 0"))
    min_teacher: float = setting(number(0, 1, "[]"))


@dataclass
class TrainerBase:
    """What both training loops read: budgets, optimiser basics, checkpoints, device."""

    max_epochs: int = setting(whole(1))
    max_steps: int | None = setting(whole(1, "no limit"))
    max_time: float | None = setting(number(0, brackets="()", off="no limit", allowed=MINUTES))
    lr: float = setting(LR)
    clip_norm: float | None = setting(number(0, off="no clipping"))
    seed: int = MISSING
    resume: str | None = MISSING  # a checkpoint file or a run directory
    eval_every: int | None = setting(whole(0, "never"))
    checkpoint_every: int | None = setting(whole(0, "no periodic checkpoints"))
    checkpoint_minutes: float | None = setting(
        number(0, brackets="()", off="steps only", allowed=MINUTES)
    )
    keep_last: int | None = setting(whole(0, "keep none"))
    log_every: int = setting(whole(1))
    device: str = setting(DEVICE)
    threads: int | None = setting(whole(1, "torch's default"))
    loggers: list[str] = setting(LOGGERS)  # besides metrics.jsonl (seq2seq.training.loggers)
    wandb_project: str = MISSING


@dataclass
class TrainerConfig(TrainerBase):
    """The translation trainer (`trainer/default.yaml`)."""

    batch_tokens: int = setting(whole(1))
    batch_sentences: int | None = setting(whole(1, "batches by trainer.batch_tokens"))
    length_buckets: bool = MISSING
    precision: str = setting(one_of(*PRECISIONS))
    lr_decay: float = setting(number(0, 1, "(]"))
    lr_patience: int = setting(whole(0))
    min_lr: float = setting(number(0))
    anneal: str = setting(one_of("none", "linear"))
    warmup_steps: int = setting(whole(0))
    accumulate: int = setting(whole(1))
    fused_optimizer: bool = MISSING
    scheduled_sampling: ScheduledSamplingConfig = field(default_factory=ScheduledSamplingConfig)
    label_smoothing: float = setting(PROBABILITY)
    eval_sentences: int | None = setting(whole(0, "all"))
    eval_max_length: int = setting(whole(1))
    early_stopping_metric: str = setting(one_of("bleu", "loss"))
    patience: int | None = setting(whole(0, "never stop early"))
    average_last: int | None = setting(whole(0, "off"))


@dataclass
class TBPTTConfig:
    k1: int | None = setting(whole(1, "one update per pass over the stream"))
    k2: int | None = setting(whole(1, "back to the stream start"))


@dataclass
class LMTrainerConfig(TrainerBase):
    """The character-LM trainer (`trainer/lm.yaml`): truncated BPTT over parallel streams."""

    batch_size: int = setting(whole(1))
    tbptt: TBPTTConfig = field(default_factory=TBPTTConfig)
    eval_chunk: int = setting(whole(1))
    show_table: bool = MISSING


# ------------------------------------------------------------------------- data
@dataclass
class CorpusFiles:
    """Explicit corpus files: aligned pairs per split, or one .tsv per split. Optional
    (null) unless `data=files`; a YAML names only the ones it sets."""

    train_src: str | None = None
    train_tgt: str | None = None
    dev_src: str | None = None
    dev_tgt: str | None = None
    test_src: str | None = None
    test_tgt: str | None = None
    train: str | None = None
    dev: str | None = None
    test: str | None = None
    src_column: int = setting(whole(0), default=0)
    tgt_column: int = setting(whole(0), default=1)


@dataclass
class FiltersConfig:
    """`data.filters`: cleaning of the training pairs beyond data.max_length (seq2seq.data.
    cleaning). Defaults here too: a config saved before the filters existed has none, and
    means them off."""

    max_chars: int | None = setting(whole(1, "no limit"), default=None)
    max_length_ratio: float | None = setting(number(1, off="no limit"), default=None)
    drop_copies: bool = False
    dedupe: bool = False
    drop_control_chars: bool = False


@dataclass
class ParallelDataConfig:
    """A parallel corpus (`data/multi30k.yaml`, `data/tatoeba_en_es.yaml`)."""

    corpus: str = setting(one_of(*CORPORA))
    root: str = MISSING
    src_lang: str = MISSING
    tgt_lang: str = MISSING
    max_length: int = setting(whole(1))
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    train_subset: int | None = setting(whole(1, "all"))
    dev_subset: int | None = setting(whole(1, "all"))
    files: CorpusFiles = field(default_factory=CorpusFiles)
    cache_dir: str | None = MISSING
    streaming: bool = MISSING
    train_shards: Any = MISSING  # one glob or a list of globs
    stream_window: int = setting(whole(1))
    tokenizer_sample: int = setting(whole(1))


@dataclass
class OwnFiles(CorpusFiles):
    """`data=files` names the training and dev files (??? in its YAML until set). They are
    unset here too: OmegaConf keeps a schema's value when ??? is merged onto it."""

    train_src: str | None = MISSING
    train_tgt: str | None = MISSING
    dev_src: str | None = MISSING
    dev_tgt: str | None = MISSING


@dataclass
class OwnFilesDataConfig(ParallelDataConfig):
    """Your own aligned files (`data/files.yaml`)."""

    files: OwnFiles = field(default_factory=OwnFiles)


@dataclass
class LMTextDataConfig:
    """Text for the character language model (`data/lm_text.yaml`)."""

    root: str = MISSING
    path: str | None = MISSING
    text: str | None = MISSING
    valid_path: str | None = MISSING
    valid_fraction: float = setting(number(0, 1, "()"))
    max_lines: int | None = setting(whole(1, "all"))
    min_char_count: int = setting(whole(1))
    unk: bool = MISSING
    shuffle_lines: bool = MISSING
    cache_dir: str | None = MISSING


# -------------------------------------------------------------------- tokenizer
@dataclass
class TokenizerConfig:
    """The tokenizer(s) of a translation corpus (`tokenizer/*.yaml`)."""

    type: str = setting(Plugin("seq2seq.tokenizers"))
    vocab_size: int = setting(whole(5))  # 4 special symbols + at least one unit
    joint: bool = MISSING
    options: dict[str, Any] = MISSING


# Each group YAML names its schema in `defaults`: (group, schema name) -> dataclass.
SCHEMAS: dict[tuple[str, str], type] = {
    ("model", "translation_model_schema"): ModelConfig,
    ("model", "lm_model_schema"): LMModelConfig,
    ("trainer", "translation_trainer_schema"): TrainerConfig,
    ("trainer", "lm_trainer_schema"): LMTrainerConfig,
    ("data", "parallel_data_schema"): ParallelDataConfig,
    ("data", "own_files_schema"): OwnFilesDataConfig,
    ("data", "lm_text_schema"): LMTextDataConfig,
    ("tokenizer", "tokenizer_schema"): TokenizerConfig,
}

# The schema of each group for each task, for a config built without Hydra's composition.
TASK_SCHEMAS: dict[str, dict[str, type]] = {
    "translation": {
        "model": ModelConfig,
        "trainer": TrainerConfig,
        "data": ParallelDataConfig,
        "tokenizer": TokenizerConfig,
    },
    "lm": {"model": LMModelConfig, "trainer": LMTrainerConfig, "data": LMTextDataConfig},
}


def register_schemas() -> None:
    """Put every schema in Hydra's ConfigStore (idempotent)."""
    store = ConfigStore.instance()
    for (group, name), node in SCHEMAS.items():
        store.store(group=group, name=name, node=node)
