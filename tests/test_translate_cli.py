"""`seq2seq-translate`: one output line per input line, always, in order.

One tiny model trained on real Multi30k (the session's fixed_run) translates; the input
is 1,000 real test sentences mixed with empty lines, 1,000+ word lines, control
characters, Unicode line separators, invalid UTF-8, a BOM and no final newline.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seq.commands.translate import main as translate_main

N_LINES = 1000
# Characters that must stay inside their line (str.splitlines() would split on most).
CONTROL = ["\x00", "\x1b[31m", "\r", "\t", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]
LONG_WORDS = 1200


@pytest.fixture(scope="module")
def checkpoint(fixed_run: Path, one_thread) -> Path:
    """A tiny model (threads only add overhead and contention: one for this module)."""
    path = fixed_run / "checkpoints" / "best.pt"
    assert path.is_file()
    return path


class Corpus:
    """The adversarial input: raw bytes of each line, and what each line is."""

    def __init__(self, data_root: Path) -> None:
        test_en = data_root / "multi30k" / "test_2016_flickr.en.gz"
        with gzip.open(test_en, "rt", encoding="utf-8") as f:
            real = f.read().splitlines()
        assert len(real) >= N_LINES
        self.lines: list[bytes] = []  # each line's bytes, without "\n" (and without the BOM)
        self.empty: set[int] = set()  # lines with nothing to translate
        self.special: set[int] = set()  # lines with control characters, bad bytes, huge length
        words = " ".join(real[:200]).split()
        for i in range(N_LINES):
            sentence = real[i]
            head, _, tail = sentence.partition(" ")
            if i % 10 == 3:
                raw, kind = b"", "empty"
            elif i % 50 == 21:  # blank: spaces and a tab, a lone CR (CRLF empty line), a NUL
                raw, kind = [b"  \t ", b"\r", b"\x00"][i // 50 % 3], "empty"
            elif i in (17, 418, 777):
                long_line = " ".join(words[(i + k) % len(words)] for k in range(LONG_WORDS))
                raw, kind = long_line.encode(), "x"
            elif i % 10 == 5:
                char = CONTROL[i // 10 % len(CONTROL)]
                raw, kind = f"{head}{char}{tail}".encode(), "x"
            elif i % 50 == 7:  # invalid UTF-8: stray bytes and a truncated sequence
                raw, kind = head.encode() + b" \xff\xfe caf\xc3 " + tail.encode(), "x"
            else:
                raw, kind = sentence.encode(), ""
            if kind == "empty":
                self.empty.add(i)
            elif kind:
                self.special.add(i)
            self.lines.append(raw)
        assert self.lines[0] and self.lines[-1]  # BOM and missing final newline on real lines
        self.special |= {0, N_LINES - 1}

    def file_bytes(self) -> bytes:
        """BOM at the start, '\\n' between lines, no newline after the last one."""
        return b"\xef\xbb\xbf" + b"\n".join(self.lines)


@pytest.fixture(scope="module")
def corpus(data_root: Path) -> Corpus:
    return Corpus(data_root)


@pytest.fixture(scope="module")
def corpus_file(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("translate_in") / "adversarial.en"
    path.write_bytes(corpus.file_bytes())
    return path


def run_translate(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        translate_main(args)
    return exit_info.value.code


def translate_file(checkpoint: Path, source: Path, output: Path, *extra: str) -> bytes:
    code = run_translate(
        ["--checkpoint", str(checkpoint), "-i", str(source), "-o", str(output), *extra]
    )
    assert code == 0
    return output.read_bytes()


def output_lines(data: bytes, expected: int) -> list[str]:
    """Exactly `expected` '\\n'-terminated UTF-8 lines, none holding another line break."""
    assert data.count(b"\n") == expected and data.endswith(b"\n")
    text = data.decode("utf-8")  # strict: the output is always valid UTF-8
    lines = text.split("\n")[:-1]
    assert len(text.splitlines()) == expected, "a line separator leaked into the output"
    return lines


@pytest.fixture(scope="module")
def greedy_output(checkpoint: Path, corpus_file: Path) -> bytes:
    return translate_file(checkpoint, corpus_file, corpus_file.with_name("greedy.de"))


def test_line_invariant_files(greedy_output: bytes, corpus: Corpus) -> None:
    lines = output_lines(greedy_output, N_LINES)
    assert "\t" not in "".join(lines)
    empty_out = {i for i, line in enumerate(lines) if not line.strip()}
    assert corpus.empty <= empty_out, "an empty input line did not give an empty output line"
    # The model does translate: most real sentences get some output (the 40-update model
    # ends a few at once), and not one string for all (else a reordering could not show).
    assert len(empty_out - corpus.empty) <= N_LINES // 10
    assert len(set(lines)) >= 10


def test_output_line_is_the_translation_of_input_line(
    greedy_output: bytes, corpus: Corpus, checkpoint: Path, tmp_path: Path
) -> None:
    lines = output_lines(greedy_output, N_LINES)
    # A sample, in reverse order, in other batches: each line gets the same translation.
    sample = sorted(corpus.special | set(range(0, N_LINES, 37)), reverse=True)
    subset = tmp_path / "subset.en"
    subset.write_bytes(b"".join(corpus.lines[i] + b"\n" for i in sample))
    sub = output_lines(translate_file(checkpoint, subset, tmp_path / "subset.de"), len(sample))
    mismatched = [i for i, got in zip(sample, sub, strict=True) if got != lines[i]]
    assert not mismatched, f"lines {mismatched} translate differently inside the big file"
    assert len({lines[i] for i in sample}) >= 5
    # Some lines entirely alone, as a one-line file without a final newline.
    for i in (0, 17, 25, 45, 57, N_LINES - 1):
        alone = tmp_path / f"line{i}.en"
        alone.write_bytes(corpus.lines[i])
        got = output_lines(translate_file(checkpoint, alone, tmp_path / f"line{i}.de"), 1)
        assert got == [lines[i]], f"line {i} alone: {got[0]!r} != {lines[i]!r}"


def console_script(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"console script {name} is not installed (pip install -e .)"
    return found


def test_line_invariant_stdin_stdout_console_script(
    greedy_output: bytes, corpus: Corpus, checkpoint: Path
) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # A locale that is not UTF-8 must not change the output encoding.
    env["PYTHONIOENCODING"] = "latin-1"
    proc = subprocess.run(  # fp32 as in-process (tests hide native bf16 from `auto`)
        [
            console_script("seq2seq-translate"),
            "--checkpoint",
            str(checkpoint),
            "--precision",
            "fp32",
        ],
        input=corpus.file_bytes(),
        capture_output=True,
        env=env,
        timeout=120,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "invalid UTF-8" in stderr  # reported, not fatal
    assert proc.stdout == greedy_output


def test_beam_and_nbest(
    checkpoint: Path,
    corpus: Corpus,
    corpus_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    beam_flags = ["--search", "beam", "--beam-size", "3"]
    beam = output_lines(
        translate_file(checkpoint, corpus_file, tmp_path / "beam.de", *beam_flags), N_LINES
    )
    assert "\t" not in "".join(beam)
    assert corpus.empty <= {i for i, line in enumerate(beam) if not line}
    # n-best through stdin/stdout: two tab-separated hypotheses on each line, best first.
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(corpus.file_bytes())))
    capsys.readouterr()
    code = run_translate(
        ["--checkpoint", str(checkpoint), "--search", "beam", "--beam-size", "3", "--nbest", "2"]
    )
    assert code == 0
    nbest = output_lines(capsys.readouterr().out.encode("utf-8"), N_LINES)
    for i, (line, best) in enumerate(zip(nbest, beam, strict=True)):
        if i in corpus.empty:
            assert line == "", f"line {i}: empty input gave {line!r}"
        else:
            fields = line.split("\t")
            assert len(fields) == 2, f"line {i}: {len(fields)} hypotheses, expected 2"
            assert fields[0] == best, f"line {i}: first of the n-best is not the 1-best"
    assert sum(a != b for a, b in (line.split("\t") for line in nbest if "\t" in line)) > 0


def test_chunk_and_batch_size_do_not_change_output(
    greedy_output: bytes, corpus: Corpus, checkpoint: Path, tmp_path: Path
) -> None:
    # The first 300 lines (BOM, empty, long, control, bad bytes) in chunks of 7, batches of 5.
    head = tmp_path / "head.en"
    head.write_bytes(b"\xef\xbb\xbf" + b"\n".join(corpus.lines[:300]))
    flags = ["--chunk-lines", "7", "--batch-size", "5"]
    small = translate_file(checkpoint, head, tmp_path / "chunked.de", *flags)
    assert output_lines(small, 300) == output_lines(greedy_output, N_LINES)[:300]


# ---------------------------------------------------------------- errors


def assert_one_error(capsys: pytest.CaptureFixture[str], *names: str) -> None:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in errors[0], errors[0]


def test_missing_checkpoint(tmp_path: Path, corpus_file: Path, capsys) -> None:
    missing = tmp_path / "no_such_run" / "best.pt"
    out = tmp_path / "out.de"
    code = run_translate(["--checkpoint", str(missing), "-i", str(corpus_file), "-o", str(out)])
    assert code == 2
    assert_one_error(capsys, str(missing))
    assert not out.exists(), "the output file is created only once the model loads"


def test_corrupted_checkpoint_subprocess(checkpoint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "truncated.pt"
    broken.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    proc = subprocess.run(
        [console_script("seq2seq-translate"), "--checkpoint", str(broken)],
        input=b"A dog runs.\n",
        capture_output=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert "Traceback" not in err
    assert err.count("error:") == 1 and str(broken) in err, err


def test_missing_input_file(checkpoint: Path, tmp_path: Path, capsys) -> None:
    missing = tmp_path / "missing.en"
    out = tmp_path / "out.de"
    code = run_translate(["--checkpoint", str(checkpoint), "-i", str(missing), "-o", str(out)])
    assert code == 2
    assert_one_error(capsys, str(missing))
    assert not out.exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--chunk-lines", "0"], "--chunk-lines"),  # 0 used to translate nothing, silently
        (["--batch-size", "0"], "--batch-size"),
        (["--nbest", "2"], "--search beam"),  # greedy has one hypothesis per line
        (["--search", "beam", "--beam-size", "2", "--nbest", "3"], "cannot exceed --beam-size"),
    ],
)
def test_bad_flags_exit_2(
    checkpoint: Path, corpus_file: Path, tmp_path: Path, capsys, flags, message
) -> None:
    out = tmp_path / "out.de"
    code = run_translate(
        ["--checkpoint", str(checkpoint), "-i", str(corpus_file), "-o", str(out), *flags]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_unknown_search_fails_before_anything_is_written(
    checkpoint: Path, corpus_file: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out.de"
    args = ["--checkpoint", str(checkpoint), "-i", str(corpus_file), "-o", str(out)]
    code = run_translate([*args, "--search", "beem"])
    assert code == 2
    assert_one_error(capsys, "unknown search 'beem'", "beam (seq2seq-rnn)")
    assert not out.exists()
