"""What vs_opennmt.py runs: each command, and the reference recipe as OpenNMT-py's YAML.

Pure functions of the paths and settings, so that --dry-run prints exactly the commands
a real run starts.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

ONMT = "opennmt-py==3.5.1"
TORCH = "torch==2.13.0"
ONMT_DEPS = [
    *("configargparse", "ctranslate2>=4,<5", "tensorboard>=2.3", "flask", "waitress"),
    *("pyonmttok>=1.37,<2", "pyyaml", "sacrebleu", "rapidfuzz", "pyahocorasick"),
    *("fasttext-wheel", "spacy", "six", "sentencepiece"),
]
LOG_EVERY = 50  # updates per log interval, both toolkits; the first interval is the warm-up
BATCH, BEAM = 64, 5  # training batch (sentences) of both; beam size
DECODE_BATCH = 128  # sentences a translation batch, both toolkits (seq2seq's default)
SEARCHES = {"greedy": 1, f"beam{BEAM}": BEAM}
# seq2seq again with its vocabulary shortlist (an option): its speed and BLEU cost
SHORTLISTED = {f"{name}_shortlist": beam for name, beam in SEARCHES.items()}
TEST = "test_2016_flickr"
CORPUS = [f"{split}.{lang}" for split in ("train", "val", TEST) for lang in ("en", "de")]

ONMT_ENV = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}  # its checkpoints pickle argparse objects


VERSIONS = (
    'import importlib.metadata as m, torch; print(torch.__version__, m.version("opennmt-py"))'
)


def shell_line(command: list[str], onmt: bool = False) -> str:
    """The command as a shell line, with the variables OpenNMT-py's commands get."""
    prefix = [f"{k}={v}" for k, v in ONMT_ENV.items()] if onmt else []
    return shlex.join([*prefix, *command])


def install_commands(venv: Path, torch_pip_args: list[str]) -> list[list[str]]:
    """torch first, so that its build stays: opennmt-py's own pins would replace it."""
    pip = [str(venv / "bin" / "pip"), "install"]
    return [
        [sys.executable, "-m", "venv", str(venv)],
        [*pip, *torch_pip_args, TORCH],
        [*pip, "--no-deps", ONMT],
        [*pip, *ONMT_DEPS],
    ]


def our_train_command(
    work: Path, data_root: Path, updates: int, precision: str = "auto"
) -> list[str]:
    """Only what the comparison needs changes: the budget, no mid-run validation or
    saves, no TensorBoard (OpenNMT-py writes none either) and a cold data cache; and the
    training precision, auto unless asked (OpenNMT-py trains in fp32 on a CPU)."""
    return [
        *(sys.executable, "-m", "seq2seq.train", "+exp=en_de_ref", f"data.root={data_root}"),
        f"trainer.precision={precision}",
        *(f"trainer.max_steps={updates}", "trainer.eval_every=0", "trainer.checkpoint_every=0"),
        *(f"trainer.log_every={LOG_EVERY}", "trainer.loggers=[]", "data.cache_dir=off"),
        f"hydra.run.dir={work / 'seq2seq' / 'run'}",
    ]


def onmt_train_commands(work: Path, venv: Path) -> list[list[str]]:
    config = str(work / "onmt" / "config.yaml")
    return [
        [str(venv / "bin" / "onmt_build_vocab"), "-config", config, "-n_sample", "-1"],
        [str(venv / "bin" / "onmt_train"), "-config", config],
    ]


def model_folder(work: Path) -> Path:
    return work / "seq2seq" / "model"


def export_command(work: Path) -> list[str]:
    """seq2seq's final weights (best.pt, as no dev score is kept) as a model folder, once."""
    checkpoint = work / "seq2seq" / "run" / "checkpoints" / "best.pt"
    return [
        *(sys.executable, "-m", "seq2seq.commands.export", str(checkpoint)),
        *("-o", str(model_folder(work)), "--force", "--no-scores"),
    ]


def translate_command(
    side: str, work: Path, venv: Path, updates: int, beam: int, src: Path, out: Path
) -> list[str]:
    """One toolkit's translation of `src` into `out` (beam 1: greedy) with its final
    model, DECODE_BATCH sentences a batch; seq2seq from its exported model folder (the
    default engine runs it on numpy, without torch), with --shortlist for `*_shortlist`."""
    if side == "seq2seq":
        checkpoint = model_folder(work)
        search = ["greedy"] if beam == 1 else ["beam", "--beam-size", str(beam)]
        return [
            *(sys.executable, "-m", "seq2seq.commands.translate", "--checkpoint", str(checkpoint)),
            *("-i", str(src), "-o", str(out), "--batch-size", str(DECODE_BATCH)),
            *("--search", *search, *(["--shortlist"] if out.stem in SHORTLISTED else [])),
        ]
    spm = str(work / "onmt" / "spm.model")
    checkpoint = work / "onmt" / "run" / f"model_step_{updates}.pt"
    return [
        *(str(venv / "bin" / "onmt_translate"), "-model", str(checkpoint), "-src", str(src)),
        *("-output", str(out), "-beam_size", str(beam), "-batch_size", str(DECODE_BATCH)),
        *("-transforms", "sentencepiece", "-src_subword_model", spm, "-tgt_subword_model", spm),
    ]


def startup_run(name: str) -> str:
    """The one-sentence run that is translation run `name`'s start-up: the same search
    (a toolkit may load more, or differently, for one search than the other)."""
    beam = {**SEARCHES, **SHORTLISTED}[name]
    return "first" if beam == 1 else f"first_beam{beam}"


def translations(work: Path, side: str) -> list[tuple[str, int, Path]]:
    """(name, beam, source) of each translation run: the start-ups first (the first
    sentence alone, greedy then beam), then the test set (for seq2seq, then again with
    its shortlist)."""
    data = work / "data"
    runs = {**SEARCHES, **(SHORTLISTED if side == "seq2seq" else {})}
    starts = [(startup_run(name), beam, data / "first.en") for name, beam in SEARCHES.items()]
    tests = [(name, beam, data / f"{TEST}.en") for name, beam in runs.items()]
    return [*starts, *tests]


def onmt_config(work: Path, updates: int) -> dict:
    """The reference recipe in OpenNMT-py's terms: brnn 2×128, input-fed LSTM 256, MLP
    attention, bridge, dropout 0.2, label smoothing 0.1 (seq2seq's default; OpenNMT-py's
    is none), Adam 1e-3, clip 5, 64 sentences a batch."""
    data, run_dir, spm = work / "data", work / "onmt" / "run", str(work / "onmt" / "spm.model")

    def pair(split: str) -> dict:
        return {
            "path_src": str(data / f"{split}.en"),
            "path_tgt": str(data / f"{split}.de"),
            "transforms": ["sentencepiece"],
        }

    vocab = str(run_dir / "vocab.shared")
    return {
        "save_data": str(run_dir / "data"), "src_vocab": vocab, "tgt_vocab": vocab,
        "share_vocab": True, "overwrite": True, "seed": 42,
        "data": {"corpus_1": pair("train"), "valid": pair("val")},
        "src_subword_model": spm, "tgt_subword_model": spm,
        "src_subword_nbest": 1, "src_subword_alpha": 0.0,
        "tgt_subword_nbest": 1, "tgt_subword_alpha": 0.0,
        "encoder_type": "brnn", "decoder_type": "rnn", "rnn_type": "LSTM",
        "enc_layers": 1, "dec_layers": 1, "enc_hid_size": 256, "dec_hid_size": 256,
        "word_vec_size": 256, "global_attention": "mlp", "input_feed": 1, "bridge": True,
        "dropout": [0.2], "share_embeddings": False, "share_decoder_embeddings": False,
        "optim": "adam", "adam_beta1": 0.9, "adam_beta2": 0.999, "learning_rate": 0.001,
        "decay_method": "none", "start_decay_steps": 1_000_000, "max_grad_norm": 5,
        "label_smoothing": 0.1, "param_init": 0.1, "batch_type": "sents", "batch_size": BATCH,
        "valid_batch_size": BATCH, "normalization": "sents", "accum_count": [1],
        "num_workers": 0, "train_steps": updates, "valid_steps": updates,
        "report_every": LOG_EVERY, "save_checkpoint_steps": updates,
        "save_model": str(run_dir / "model"), "log_file": str(run_dir / "train.log"),
    }  # fmt: skip
