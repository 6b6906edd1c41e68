"""The typed schema of every config group: one dataclass per shape of `model`, `trainer`,
`data` and `tokenizer`, registered in Hydra's ConfigStore.

Each group's YAML starts with `defaults: [<schema name>, _self_]`, so Hydra checks every
value's type (and refuses unknown keys) while it composes the config. Keys a YAML file
leaves out take the defaults below. Ranges and choices ride on the fields as rules
(seq2seq.config.rules) and are checked by `seq2seq.config.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from seq2seq.config.rules import PluginRule, Rule, one_of, positive, whole, within
from seq2seq.data.corpora import CORPORA
from seq2seq.hardware import PRECISIONS
from seq2seq.nn.initialization import SCHEMES

SCHEDULES = ("none", "linear", "exponential", "inverse_sigmoid")
DATA_ROOT = "${oc.env:SEQ2SEQ_DATA,./data}"


def setting(default: Any = MISSING, rule: Rule | PluginRule | None = None) -> Any:
    """A schema field: its default (a dict or list default is copied per config) and rule."""
    metadata = {"rule": rule} if rule else {}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


PROBABILITY = within(0, 1)
CELL = PluginRule("seq2seq.cells", "cell")
INIT = one_of(*SCHEMES)


# ------------------------------------------------------------------------ model
@dataclass
class ModelConfig:
    """The translation model (`model/default.yaml`); the fields of nn.model.ModelSpec."""

    cell: str = setting("gru", CELL)
    cell_options: dict[str, Any] = setting({})
    embedding_size: int = setting(256, whole(1))
    hidden_size: int = setting(512, whole(1))
    encoder_hidden_size: int | None = setting(None, whole(1, "model.hidden_size"))
    num_layers: int = setting(1, whole(1))
    bidirectional: bool = False
    dropout: float = setting(0.2, PROBABILITY)
    embedding_dropout: float | None = setting(None, within(0, 1, off="model.dropout"))
    variational_dropout: bool = False
    tie_embeddings: str = setting("none", one_of("none", "decoder", "all"))
    decoder: str = setting("fixed", PluginRule("seq2seq.decoders", "decoder"))
    decoder_options: dict[str, Any] = setting({})
    fused: bool = True
    compile_cell: Any = setting(False, one_of(False, True, "script", "compile"))
    init: str = setting("default", INIT)
    init_std: float = setting(1.0, positive())
    init_range: float = setting(0.1, positive())


@dataclass
class LMModelConfig:
    """The character language model (`model/char_lm.yaml`); the fields of lm.model.LMSpec."""

    cell: str = setting("lstm", CELL)
    cell_options: dict[str, Any] = setting({})
    embedding_size: int | None = setting(64, whole(0, "one-hot inputs"))
    hidden_size: int = setting(256, whole(1))
    num_layers: int = setting(1, whole(1))
    dropout: float = setting(0.0, PROBABILITY)
    fused: bool = True
    init: str = setting("default", INIT)
    init_std: float = setting(1.0, positive())


# ---------------------------------------------------------------------- trainer
@dataclass
class ScheduledSamplingConfig:
    schedule: str = setting("none", one_of(*SCHEDULES))
    k: float = setting(5000.0, positive("a number of updates > 0"))
    min_teacher: float = setting(0.0, within(0, 1, high_open=False))


@dataclass
class TrainerBase:
    """What both training loops read: budgets, optimiser basics, checkpoints, device."""

    max_epochs: int = setting(30, whole(1))
    max_steps: int | None = setting(None, whole(1, "no limit"))
    max_time: float | None = setting(None, positive("a number of minutes > 0", "no limit"))
    lr: float = setting(0.001, positive("a number > 0 (e.g. 0.001)"))
    clip_norm: float | None = setting(5.0, within(0, float("inf"), off="no clipping"))
    seed: int = 1
    resume: str | None = None
    eval_every: int | None = setting(500, whole(0, "never"))
    checkpoint_every: int | None = setting(500, whole(0, "no periodic checkpoints"))
    checkpoint_minutes: float | None = setting(
        None, positive("a number of minutes > 0", "steps only")
    )
    keep_last: int | None = setting(3, whole(0, "keep none"))
    log_every: int = setting(50, whole(1))
    device: str = "cpu"
    threads: int | None = setting(None, whole(1, "torch's default"))


@dataclass
class TrainerConfig(TrainerBase):
    """The translation trainer (`trainer/default.yaml`)."""

    batch_tokens: int = setting(4000, whole(1))
    batch_sentences: int | None = setting(None, whole(1, "batches by trainer.batch_tokens"))
    length_buckets: bool = True
    precision: str = setting("fp32", one_of(*PRECISIONS))
    lr_decay: float = setting(0.5, within(0, 1, high_open=False))
    lr_patience: int = setting(2, whole(0))
    min_lr: float = setting(1.0e-5, within(0, float("inf")))
    anneal: str = setting("none", one_of("none", "linear"))
    warmup_steps: int = setting(0, whole(0))
    accumulate: int = setting(1, whole(1))
    fused_optimizer: bool = True
    scheduled_sampling: ScheduledSamplingConfig = field(default_factory=ScheduledSamplingConfig)
    label_smoothing: float = setting(0.1, PROBABILITY)
    eval_sentences: int | None = setting(1000, whole(0, "all"))
    eval_max_length: int = setting(100, whole(1))
    early_stopping_metric: str = setting("bleu", one_of("bleu", "loss"))
    patience: int | None = setting(8, whole(0, "never stop early"))
    average_last: int | None = setting(0, whole(0, "off"))


@dataclass
class TBPTTConfig:
    k1: int | None = setting(100, whole(1, "one update per pass over the stream"))
    k2: int | None = setting(100, whole(1, "back to the stream start"))


@dataclass
class LMTrainerConfig(TrainerBase):
    """The character-LM trainer (`trainer/lm.yaml`): truncated BPTT over parallel streams."""

    max_epochs: int = setting(50, whole(1))
    lr: float = setting(0.002, positive("a number > 0 (e.g. 0.002)"))
    eval_every: int | None = setting(200, whole(0, "never"))
    checkpoint_every: int | None = setting(200, whole(0, "no periodic checkpoints"))
    batch_size: int = setting(32, whole(1))
    tbptt: TBPTTConfig = field(default_factory=TBPTTConfig)
    eval_chunk: int | None = setting(500, whole(1, "500 steps"))
    show_table: bool = False


# ------------------------------------------------------------------------- data
@dataclass
class CorpusFiles:
    """Explicit corpus files: aligned pairs per split, or one .tsv per split."""

    train_src: str | None = None
    train_tgt: str | None = None
    dev_src: str | None = None
    dev_tgt: str | None = None
    test_src: str | None = None
    test_tgt: str | None = None
    train: str | None = None
    dev: str | None = None
    test: str | None = None
    src_column: int = setting(0, whole(0))
    tgt_column: int = setting(1, whole(0))


@dataclass
class ParallelDataConfig:
    """A parallel corpus: multi30k, tatoeba_en_es or your own files."""

    corpus: str = setting(MISSING, one_of(*CORPORA))
    root: str = DATA_ROOT
    src_lang: str = MISSING
    tgt_lang: str = MISSING
    max_length: int = setting(100, whole(1))
    train_subset: int | None = setting(None, whole(1, "all"))
    dev_subset: int | None = setting(None, whole(1, "all"))
    files: CorpusFiles = field(default_factory=CorpusFiles)
    cache_dir: str | None = None
    streaming: bool = False
    train_shards: Any = None  # one glob or a list of globs
    stream_window: int = setting(50000, whole(1))
    tokenizer_sample: int = setting(200000, whole(1))


@dataclass
class OwnFiles(CorpusFiles):
    """`data=files`: training and dev files must be named (.tsv files: set train/dev and
    null the *_src/*_tgt pairs)."""

    train_src: str | None = MISSING
    train_tgt: str | None = MISSING
    dev_src: str | None = MISSING
    dev_tgt: str | None = MISSING


@dataclass
class OwnFilesDataConfig(ParallelDataConfig):
    """Your own aligned files (`data/files.yaml`)."""

    corpus: str = setting("files", one_of(*CORPORA))
    src_lang: str = "src"
    tgt_lang: str = "tgt"
    files: OwnFiles = field(default_factory=OwnFiles)


@dataclass
class LMTextDataConfig:
    """Text for the character language model (`data/lm_text.yaml`)."""

    root: str = DATA_ROOT
    path: str | None = None
    text: str | None = None
    valid_path: str | None = None
    valid_fraction: float = setting(0.01, Rule(lambda v: 0 < v < 1, "a number in (0, 1)"))
    max_lines: int | None = setting(None, whole(1, "all"))
    min_char_count: int = setting(1, whole(1))
    unk: bool = True
    shuffle_lines: bool = True
    cache_dir: str | None = None


# -------------------------------------------------------------------- tokenizer
@dataclass
class TokenizerConfig:
    type: str = setting("sentencepiece", PluginRule("seq2seq.tokenizers", "tokenizer"))
    vocab_size: int = 8000
    joint: bool = True
    options: dict[str, Any] = setting({})


# Schema name in its group -> dataclass; each group YAML names its schema in `defaults`.
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


def register_schemas() -> None:
    """Put every schema in Hydra's ConfigStore (idempotent)."""
    store = ConfigStore.instance()
    for (group, name), node in SCHEMAS.items():
        store.store(group=group, name=name, node=node)
