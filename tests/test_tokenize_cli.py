"""seq2seq-tokenize: train, encode, decode and vocab; mistakes and warnings as a user meets
them (a subprocess), the rest in this process."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from _models import train_tiny

from seq2seq.checkpoint import load_checkpoint
from seq2seq.commands.tokenize import main as tokenize_main
from seq2seq.data.reading import read_lines
from seq2seq.tokenizers import tokenizer_from_state

REPO = Path(__file__).resolve().parents[1]


def tokenize(*args, stdin: bytes | str = b"", command: bool = False):
    """Run seq2seq-tokenize on `args` with `stdin`: in this process (fast), or with
    `command` as a user does, in a subprocess (for exit statuses and stderr)."""
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    argv = [str(a) for a in args]
    if command:
        return subprocess.run(
            [sys.executable, "-m", "seq2seq.commands.tokenize", *argv],
            input=data,
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=300,
        )
    out = io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", newline="\n", write_through=True)
    stdin_stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    code = 0
    with mock.patch.object(sys, "stdin", stdin_stream), mock.patch.object(sys, "stdout", stdout):
        try:
            tokenize_main(argv)
        except SystemExit as exit_info:
            code = exit_info.code or 0
    return subprocess.CompletedProcess(argv, code, out.getvalue(), b"")


def out_lines(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode("utf-8").split("\n")[:-1]


@pytest.fixture(scope="module")
def multi30k(data_root, tmp_path_factory):
    """The first 2,000 Multi30k training pairs, as two files."""
    folder = tmp_path_factory.mktemp("multi30k")
    lines = {}
    for lang in ("en", "de"):
        lines[lang] = read_lines(data_root / "multi30k" / f"train.{lang}.gz")[:2000]
        (folder / f"train.{lang}").write_text("\n".join(lines[lang]) + "\n", encoding="utf-8")
    return folder, lines


@pytest.fixture(scope="module")
def trained(multi30k):
    folder, _ = multi30k
    done = tokenize(
        "train",
        "--src",
        folder / "train.en",
        "--tgt",
        folder / "train.de",
        "--vocab-size",
        1000,
        "--option",
        "model_type=bpe",
        "-o",
        folder / "out",
    )
    assert done.returncode == 0, done.stderr.decode()
    return folder / "out"


def test_train_writes_what_training_writes(trained):
    folder = trained / "tokenizer"
    assert sorted(p.name for p in folder.iterdir()) == ["src", "tgt", "tokenizers.json"]
    assert sorted(p.name for p in (folder / "src").iterdir()) == ["spm.model", "spm.vocab"]
    vocab = out_lines(tokenize("vocab", "--tokenizer", trained))
    assert len(vocab) == 1000
    assert vocab[:4] == ["0\t<pad>", "1\t<unk>", "2\t<s>", "3\t</s>"]
    spm_vocab = (folder / "src" / "spm.vocab").read_text(encoding="utf-8").splitlines()
    assert [line.split("\t")[1] for line in vocab] == [line.split("\t")[0] for line in spm_vocab]


def test_round_trip_on_multi30k(trained, multi30k):
    _, lines = multi30k
    text = lines["de"][:300]
    stdin = "\n".join(text) + "\n"
    for side, flags in (("tgt", ["--ids"]), ("tgt", []), ("src", [])):
        encoded = out_lines(
            tokenize("encode", "--tokenizer", trained, "--side", side, *flags, stdin=stdin)
        )
        assert len(encoded) == len(text)
        decoded = tokenize(
            "decode",
            "--tokenizer",
            trained,
            "--side",
            side,
            *flags,
            stdin="\n".join(encoded) + "\n",
        )
        # sentencepiece's normalization (as in training) collapses runs of spaces; Multi30k
        # has a few ("am  hohen Brett"): all else comes back exactly
        assert out_lines(decoded) == [" ".join(line.split()) for line in text]
    assert sum(line != " ".join(line.split()) for line in text) < 5
    ids = out_lines(tokenize("encode", "--tokenizer", trained, "--ids", stdin=text[0] + "\n"))
    assert all(token.isdigit() for token in ids[0].split())


def test_one_line_out_per_line_in(trained):
    stdin = "A dog.\n\n\nTwo men.\n\n"  # empty lines, and the last one too
    encoded = out_lines(tokenize("encode", "--tokenizer", trained, stdin=stdin))
    assert len(encoded) == 5 and encoded[1:3] == ["", ""] and encoded[4] == ""
    decoded = out_lines(tokenize("decode", "--tokenizer", trained, stdin="\n".join(encoded) + "\n"))
    assert decoded == ["A dog.", "", "", "Two men.", ""]
    no_newline = out_lines(tokenize("encode", "--tokenizer", trained, stdin="A dog."))
    assert len(no_newline) == 1


def test_invalid_utf8_is_replaced_with_a_warning(trained):
    done = tokenize(
        "encode", "--tokenizer", trained, stdin=b"A dog.\nbad \xff byte\nTwo men.\n", command=True
    )
    assert len(out_lines(done)) == 3
    assert "<stdin>:2: invalid UTF-8" in done.stderr.decode()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    overrides = [
        "data.train_subset=300",
        "data.cache_dir=off",
        "trainer.max_steps=2",
        "trainer.eval_every=2",
        "trainer.checkpoint_every=2",
        "trainer.eval_sentences=5",
    ]
    return train_tiny(run, overrides)


def test_a_run_folder_encodes_as_training_did(run_dir, multi30k, tmp_path):
    _, lines = multi30k
    text = lines["en"][:50] + [""]
    payload = load_checkpoint(run_dir)
    training = tokenizer_from_state(payload["tokenizers"]["src"])
    expected = [" ".join(map(str, training.encode(line))) for line in text]
    stdin = "\n".join(text) + "\n"
    for source in (run_dir, run_dir / "checkpoints" / "best.pt", run_dir / "tokenizer"):
        assert (
            out_lines(tokenize("encode", "--tokenizer", source, "--ids", stdin=stdin)) == expected
        )
    # a run folder whose checkpoints are gone still has the tokenizers training wrote
    early = tmp_path / "early"
    shutil.copytree(run_dir / "tokenizer", early / "tokenizer")
    assert out_lines(tokenize("encode", "--tokenizer", early, "--ids", stdin=stdin)) == expected
    # the command trains what training trained, given the same text and settings
    for lang in ("en", "de"):
        (tmp_path / lang).write_text("\n".join(lines[lang][:300]) + "\n", encoding="utf-8")
    args = ["--src", tmp_path / "en", "--tgt", tmp_path / "de", "--vocab-size", 500]
    assert tokenize("train", *args, "-o", tmp_path / "mine").returncode == 0
    mine = tokenize("encode", "--tokenizer", tmp_path / "mine", "--ids", stdin=stdin)
    assert out_lines(mine) == expected


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_a_missing_input_file(trained, tmp_path):
    missing = tmp_path / "nope.txt"
    message = _one_line_error(
        tokenize("encode", "--tokenizer", trained, "-i", missing, command=True)
    )
    assert str(missing) in message and "No such file" in message
    message = _one_line_error(
        tokenize("train", "--src", missing, "-o", tmp_path / "o", command=True)
    )
    assert str(missing) in message and "not found" in message


def test_an_unknown_tokenizer_type(multi30k, tmp_path):
    folder, _ = multi30k
    done = tokenize(
        "train",
        "--src",
        folder / "train.en",
        "--type",
        "sentencepeice",
        "-o",
        tmp_path,
        command=True,
    )
    message = _one_line_error(done)
    assert "unknown tokenizers 'sentencepeice'" in message
    assert "Did you mean: sentencepiece?" in message
    assert not (tmp_path / "tokenizer").exists()


def test_a_folder_without_a_tokenizer(tmp_path):
    (tmp_path / "empty").mkdir()
    message = _one_line_error(
        tokenize("encode", "--tokenizer", tmp_path / "empty", stdin="a\n", command=True)
    )
    assert f"{tmp_path / 'empty'}: no tokenizer found" in message
    message = _one_line_error(tokenize("vocab", "--tokenizer", tmp_path / "absent", command=True))
    assert f"{tmp_path / 'absent'}: no such file or folder" in message


def test_ids_outside_the_vocabulary_name_the_line(trained):
    done = tokenize("decode", "--tokenizer", trained, "--ids", stdin="5 6\n5 99999\n", command=True)
    message = _one_line_error(done)
    assert "<stdin>:2: '99999' is not a token id (a whole number in 0..999)" in message
    done = tokenize("decode", "--tokenizer", trained, stdin="▁A\nnot-a-piece-xyz\n", command=True)
    assert "<stdin>:2: 'not-a-piece-xyz' is not a piece" in _one_line_error(done)
