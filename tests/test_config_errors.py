"""Config and corpus mistakes: each realistic mistake fails before real work
with a message that names the culprit (key, file or flag) and what is allowed, never a
bare traceback.

Most cases compose the config with Hydra's compose API and call seq2seq.train.train
in-process (fast): the mistake must raise one of seq2seq.train.USER_ERRORS, which the
command turns into one "error: ..." line and exit status 2 (a value of the wrong type is
refused already while composing, with the message seq2seq.config words for it). A few
run the real commands in a subprocess, where the exit status and the absence of a
traceback are checked.

Every mistake here must give a message naming the key or file and what is
allowed: never a traceback, never silence.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _models import PINNED_TINY_MODEL, make_config
from hydra.errors import ConfigCompositionException

from seq2seq.commands.train import USER_ERRORS, train
from seq2seq.commands.translate import main as translate_main
from seq2seq.config import composition_error_message

# A tiny, fully pinned model (independent of the experiment's recipe) on 50 real pairs.
BASE = [
    "data.train_subset=50",
    "data.dev_subset=10",
    "tokenizer.vocab_size=100",
    *PINNED_TINY_MODEL,
    "trainer.max_steps=2",
    "trainer.eval_every=0",
    "trainer.checkpoint_every=0",
    "trainer.eval_sentences=5",
    "trainer.log_every=1",
    "trainer.batch_tokens=500",
    "trainer.threads=1",
    "trainer.warmup_steps=0",
]


def compose(overrides: list[str]):
    return make_config([*BASE, *overrides])


def train_error(run_dir: Path, overrides: list[str]) -> str:
    """The message that training with `overrides` reports: the config schema's, when Hydra
    already refuses to compose the config (a value of the wrong type), else the one of the
    user error that training raises."""
    try:
        cfg = compose(overrides)
    except ConfigCompositionException as exc:
        return composition_error_message(exc)
    run_dir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    try:
        with pytest.raises(USER_ERRORS) as info:
            train(cfg, run_dir)
    finally:
        torch.set_num_threads(threads)
    assert not (run_dir / "checkpoints").exists(), "the mistake was found only after training"
    return str(info.value)


def assert_mentions(message: str, *parts: str) -> None:
    missing = [part for part in parts if part not in message]
    assert not missing, f"{missing} not in: {message}"


@pytest.mark.parametrize("error", USER_ERRORS, ids=lambda e: e.__name__)
def test_the_command_turns_every_user_error_into_one_line_and_exit_status_2(
    tmp_path, monkeypatch, capsys, error
):
    """The exit path the in-process cases rely on: whatever user error training raises,
    the real command prints it as one `error:` line and exits with status 2."""
    from seq2seq.commands import train as command

    def mistaken(cfg, run_dir):
        raise error("trainer.lr must be a number > 0 (e.g. 0.001), got -1")

    monkeypatch.setattr(command, "train", mistaken)
    monkeypatch.setattr(sys, "argv", ["seq2seq.train", f"hydra.run.dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as info:
        command.main()
    err = capsys.readouterr().err
    assert info.value.code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == ["error: trainer.lr must be a number > 0 (e.g. 0.001), got -1"]
    assert "Traceback" not in err


def subprocess_env() -> dict[str, str]:
    env = {**os.environ, "SEQ2SEQ_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)  # it would make Hydra print the stack trace
    return env


def run_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )


# ----------------------------------------------------- misspelt keys, each group
@pytest.mark.parametrize(
    "override,key",
    [
        ("model.hiden_size=64", "model.hiden_size"),
        ("trainer.max_step=5", "trainer.max_step"),
        ("data.train_subsett=50", "data.train_subsett"),
        ("tokenizer.vocab=100", "tokenizer.vocab"),
        ("trainer.scheduled_sampling.shedule=linear", "trainer.scheduled_sampling.shedule"),
    ],
)
def test_misspelt_key_is_refused_when_the_config_is_composed(override, key):
    with pytest.raises(ConfigCompositionException) as info:
        compose([override])
    assert_mentions(str(info.value), f"Could not override '{key}'")


def test_misspelt_key_on_the_command_line_exits_without_a_traceback(tmp_path):
    result = run_command(
        "-m", "seq2seq.train", "model.hiden_size=64", f"hydra.run.dir={tmp_path / 'run'}"
    )
    assert result.returncode != 0
    assert "model.hiden_size" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_misspelt_key_suggests_the_right_one(tmp_path):
    message = train_error(tmp_path / "run", ["+model.hiden_size=64"])
    assert_mentions(message, "model.hiden_size", "hidden_size")
    assert "did you mean" in message.lower() or "embedding_size" in message


# ------------------------------------------------- wrong types and values: trainer
@pytest.mark.parametrize(
    "override,parts",
    [
        ("trainer.lr=abc", ["trainer.lr", "'abc'", "a number > 0"]),
        ("trainer.lr=-0.1", ["trainer.lr", "-0.1", "a number > 0"]),
        ("trainer.batch_tokens=0", ["trainer.batch_tokens", "got 0", ">= 1"]),
        ("trainer.max_steps=-1", ["trainer.max_steps", "got -1", ">= 1", "null"]),
        ("trainer.max_epochs=0", ["trainer.max_epochs", "got 0", ">= 1"]),
        ("trainer.log_every=0", ["trainer.log_every", "got 0", ">= 1"]),
        ("trainer.checkpoint_every=often", ["trainer.checkpoint_every", "'often'", ">= 0"]),
        ("trainer.label_smoothing=2", ["trainer.label_smoothing", "got 2", "[0, 1)"]),
        ("trainer.max_time=-3", ["trainer.max_time", "got -3", "minutes > 0"]),
        ("trainer.early_stopping_metric=bleuu", ["trainer.early_stopping_metric", "bleu, loss"]),
        ("trainer.length_buckets=maybe", ["trainer.length_buckets", "true or false"]),
        ("trainer.accumulate=0", ["trainer.accumulate", ">= 1"]),
        ("trainer.precision=fp8", ["trainer.precision", "fp8", "fp32, bf16"]),
        ("trainer.scheduled_sampling.schedule=cosine", ["cosine", "linear"]),
        ("trainer.device=gpu", ["trainer.device", "'gpu'", "cpu, cuda"]),
    ],
)
def test_bad_trainer_value(tmp_path, override, parts):
    assert_mentions(train_error(tmp_path / "run", [override]), *parts)


def test_two_bad_trainer_values_are_reported_together(tmp_path):
    # values out of range; a value of the wrong type stops Hydra's composing at once
    message = train_error(tmp_path / "run", ["trainer.lr=-1", "trainer.batch_tokens=0"])
    assert_mentions(message, "trainer.lr", "trainer.batch_tokens")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_device_without_a_gpu(tmp_path):
    message = train_error(tmp_path / "run", ["trainer.device=cuda"])
    assert_mentions(message, "trainer.device=cuda", "no CUDA GPU", "trainer.device=cpu")


# ---------------------------------------------------- model and plugin mistakes
@pytest.mark.parametrize(
    "overrides,parts",
    [
        (["model.cell=lstmm"], ["'lstmm'", "Available:", "Did you mean: lstm"]),
        (["model.decoder=bahdanou"], ["'bahdanou'", "Available:", "bahdanau"]),
        (["tokenizer.type=bpe"], ["'bpe'", "Available:", "sentencepiece"]),
        (
            ["model.decoder=luong", "+model.decoder_options.score=cosine"],
            ["score", "'cosine'", "mlp, dot, general"],
        ),
        (
            ["+model.cell_options.forget_bias=1.0"],  # an LSTM option given to a GRU
            ["model.cell_options", "forget_bias", "Accepted options"],
        ),
        (
            ["model.cell=elman", "+model.cell_options.activation=softplus"],
            ["softplus", "relu", "sigmoid", "tanh"],
        ),
        (["tokenizer.options.model_type=wordpiece"], ["model_type", "wordpiece", "unigram"]),
        (["model.init=he"], ["model.init", "'he'", "orthogonal"]),
        (["model.tie_embeddings=both"], ["model.tie_embeddings", "none, decoder, all"]),
    ],
)
def test_bad_model_or_plugin_choice(tmp_path, overrides, parts):
    assert_mentions(train_error(tmp_path / "run", overrides), *parts)


MODEL_AND_DATA_MISTAKES = [
    pytest.param(
        ["model.tie_embeddings=all", "tokenizer.joint=false", "model.embedding_size=16"],
        ["model.tie_embeddings=all", "tokenizer.joint"],
        id="tie_all_without_joint_vocab",
    ),
    pytest.param(
        ["model.num_layers=0"],
        ["model.num_layers", ">= 1"],
        id="zero_layers",
    ),
    pytest.param(
        ["model.bidirectional=maybe"],
        ["model.bidirectional", "true or false"],
        id="bool_as_string",
    ),
    pytest.param(
        ["model.dropout=1.5"],
        ["model.dropout", "1.5"],
        id="dropout_above_one",
    ),
    pytest.param(
        ["model.decoder=luong", "+model.decoder_options.scor=dot"],
        ["model.decoder_options", "scor", "score"],
        id="misspelt_decoder_option",
    ),
    pytest.param(
        ["tokenizer.vocab_size=0"],
        ["tokenizer.vocab_size", ">= 5"],
        id="zero_vocab",
    ),
    pytest.param(
        ["data.train_subset=2000", "tokenizer.vocab_size=40"],
        ["tokenizer.vocab_size", "character"],
        id="vocab_smaller_than_the_alphabet",
    ),
    pytest.param(
        ["data.max_length=0"],
        ["data.max_length", "0"],
        id="every_pair_filtered_out",
    ),
]


@pytest.mark.parametrize("overrides,parts", MODEL_AND_DATA_MISTAKES)
def test_model_and_data_mistakes_are_named(tmp_path, overrides, parts):
    assert_mentions(train_error(tmp_path / "run", overrides), *parts)


# ------------------------------------------------------------------ corpus mistakes
def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def files_config(folder: Path, **paths: Path | str) -> list[str]:
    default = {name: folder / f"{name}.txt" for name in ("train_src", "train_tgt")}
    default.update(dev_src=folder / "train_src.txt", dev_tgt=folder / "train_tgt.txt")
    default.update(paths)
    return ["data=files", *[f"data.files.{key}={value}" for key, value in default.items()]]


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    write_lines(folder / "train_src.txt", [f"a small house number {i}" for i in range(30)])
    write_lines(folder / "train_tgt.txt", [f"ein kleines Haus Nummer {i}" for i in range(30)])
    return folder


def test_corpus_file_not_found(tmp_path, corpus):
    missing = corpus / "train.en"
    message = train_error(tmp_path / "run", files_config(corpus, train_src=missing))
    assert_mentions(message, str(missing), "not found")


def test_parallel_files_with_different_line_counts(tmp_path, corpus):
    short = write_lines(corpus / "short.txt", ["ein Haus"] * 29)
    message = train_error(tmp_path / "run", files_config(corpus, train_tgt=short))
    assert_mentions(message, "train_src.txt", "short.txt", "30 lines", "29 lines")


def test_corpus_with_invalid_utf8_names_file_and_line(tmp_path, corpus):
    bad = corpus / "latin1.txt"
    bad.write_bytes("\n".join(["ok"] * 2 + ["Stra\xdfe"] + ["ok"] * 27).encode("latin-1") + b"\n")
    message = train_error(tmp_path / "run", files_config(corpus, train_tgt=bad))
    assert_mentions(message, f"{bad}:3", "UTF-8", "iconv")


def test_gz_name_on_a_plain_file(tmp_path, corpus):
    fake = corpus / "train.de.gz"
    fake.write_text("not compressed\n" * 30, encoding="utf-8")
    message = train_error(tmp_path / "run", files_config(corpus, train_tgt=fake))
    assert_mentions(message, str(fake), "gzip")


def test_corpus_files_left_unset(tmp_path):
    message = train_error(tmp_path / "run", ["data=files"])
    assert_mentions(message, "data.files.train_src", "data.files.dev_tgt", "???")


@pytest.mark.parametrize(
    "overrides,parts",
    [
        (["data.corpus=multi31k"], ["'multi31k'", "multi30k, tatoeba_en_es, files"]),
        (["data.src_lang=english"], ["src_lang='english'", "en, de, fr, cs"]),
        (["data.root=/nonexistent/data"], ["/nonexistent/data", "data_scripts/prepare.py"]),
    ],
)
def test_named_corpus_mistakes(tmp_path, overrides, parts):
    assert_mentions(train_error(tmp_path / "run", overrides), *parts)


def test_gzip_corpus_that_is_cut_short(tmp_path, corpus):
    cut = corpus / "cut.txt.gz"
    data = gzip.compress(("ein Haus\n" * 30).encode())
    cut.write_bytes(data[: len(data) // 2])
    message = train_error(tmp_path / "run", files_config(corpus, train_tgt=cut))
    assert_mentions(message, str(cut), "not a valid gzip file")


# -------------------------------------------------------------- resume mistakes
@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A 2-step run with last.pt (full) and best.pt (weights only)."""
    run = tmp_path_factory.mktemp("small_run")
    threads = torch.get_num_threads()
    try:
        train(compose(["trainer.eval_every=2", "trainer.checkpoint_every=2"]), run)
    finally:
        torch.set_num_threads(threads)
    assert (run / "checkpoints" / "last.pt").exists() and (run / "checkpoints" / "best.pt").exists()
    return run


def test_resume_from_a_missing_checkpoint(tmp_path):
    missing = tmp_path / "old" / "last.pt"
    message = train_error(tmp_path / "run", [f"trainer.resume={missing}"])
    assert_mentions(message, "cannot resume", str(missing), "not found")


def test_resume_from_a_corrupt_checkpoint(tmp_path, small_run):
    broken = tmp_path / "last.pt"
    data = (small_run / "checkpoints" / "last.pt").read_bytes()
    broken.write_bytes(data[: len(data) // 3])
    message = train_error(tmp_path / "run", [f"trainer.resume={broken}"])
    assert_mentions(message, "cannot resume", str(broken), "truncated or corrupted")


def test_resume_from_a_weights_only_checkpoint(tmp_path, small_run):
    best = small_run / "checkpoints" / "best.pt"
    message = train_error(tmp_path / "run", [f"trainer.resume={best}"])
    assert_mentions(message, str(best), "weights only", "last.pt")


def test_resume_with_a_different_model_shape(tmp_path, small_run):
    message = train_error(tmp_path / "run", [f"trainer.resume={small_run}", "model.hidden_size=32"])
    assert_mentions(message, "cannot resume", "hidden_size", "original model settings")


def test_resume_from_a_folder_without_checkpoints(tmp_path):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    message = train_error(tmp_path / "run", [f"trainer.resume={empty}"])
    assert_mentions(message, "cannot resume", str(empty / "checkpoints" / "last.pt"))


# ------------------------------------------------------------- translate mistakes
def translate_error(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        translate_main(list(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.fixture
def source(tmp_path) -> Path:
    return write_lines(tmp_path / "src.en", ["A man is riding a bike."])


def test_translate_with_a_missing_checkpoint(tmp_path, capsys, source):
    missing = tmp_path / "runs" / "best.pt"
    err = translate_error(capsys, "--checkpoint", str(missing), "-i", str(source))
    assert_mentions(err, str(missing), "not found")


def test_translate_with_a_file_that_is_not_a_checkpoint(tmp_path, capsys, source):
    err = translate_error(capsys, "--checkpoint", str(source), "-i", str(source))
    assert_mentions(err, str(source), "truncated or corrupted")


def test_translate_with_an_unknown_search(tmp_path, capsys, source):
    err = translate_error(capsys, "--checkpoint", "x.pt", "--search", "beem", "-i", str(source))
    assert_mentions(err, "'beem'", "Available:", "Did you mean: beam")


@pytest.mark.parametrize(
    "flags,parts",
    [
        (["--search", "beam", "--beam-size", "0"], ["--beam-size", "must be >= 1, got 0"]),
        (["--beam-size", "3"], ["--beam-size 3", "--search beam", "'greedy' does not take it"]),
        (["--batch-size", "many"], ["--batch-size", "'many'"]),
        (["--search", "greedy", "--nbest", "3"], ["--nbest 3", "--search beam"]),
        (["--search", "beam", "--top-k", "5"], ["--top-k", "--search sample"]),
        (
            ["--search", "beam", "--beam-size", "2", "--nbest", "4"],
            ["--nbest (4) cannot exceed --beam-size (2)"],
        ),
    ],
)
def test_translate_with_bad_search_flags(capsys, source, flags, parts):
    err = translate_error(capsys, "--checkpoint", "x.pt", "-i", str(source), *flags)
    assert_mentions(err, *parts)


def test_translate_with_a_missing_input_file(tmp_path, capsys, small_run):
    missing = tmp_path / "nope.en"
    out = tmp_path / "out.de"
    err = translate_error(
        capsys, "--checkpoint", str(small_run), "-i", str(missing), "-o", str(out)
    )
    assert_mentions(err, str(missing), "No such file")
    assert not out.exists()


def test_translate_command_with_a_missing_checkpoint_exits_2_without_a_traceback(tmp_path, source):
    missing = tmp_path / "nope.pt"
    result = run_command(
        "-m", "seq2seq.commands.translate", "--checkpoint", str(missing), "-i", str(source)
    )
    assert result.returncode == 2, result.stderr
    assert f"error: checkpoint not found: {missing}" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_train_command_with_a_bad_value_exits_2_without_a_traceback(tmp_path):
    result = run_command(
        "-m",
        "seq2seq.train",
        *BASE,
        "trainer.batch_tokens=0",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 2, result.stderr
    assert "error: trainer.batch_tokens must be a whole number >= 1, got 0" in result.stderr
    assert "Traceback" not in result.stderr
