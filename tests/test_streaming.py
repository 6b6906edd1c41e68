"""seq2seq-translate streams (issue 7): it reads and translates its input in bounded
chunks, writes each chunk's output before reading on, and keeps one output line per
input line, in order.

Peak RSS is not compared across input sizes here: the interpreter and torch take some
hundreds of MB, and buffering a few thousand short lines adds a few MB, within the
noise. Instead the tests check the mechanism that bounds memory: at no moment has the
command read more than one chunk beyond what it has written, and output appears while
the input is still open. data_scripts/measure_streaming.py measures the peak RSS of
10,000- and 1,000,000-line runs for the README.
"""

from __future__ import annotations

import io
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from _models import PINNED_TINY_MODEL, train_tiny

from seq2seq.commands.translate import main as translate_main
from seq2seq.data.reading import read_lines

FAST = ["--search", "greedy", "--max-length", "8", "--batch-size", "128", "--threads", "1"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, one_thread) -> Path:
    run = train_tiny(
        tmp_path_factory.mktemp("streaming"),
        [
            "data.train_subset=200",
            "tokenizer.vocab_size=100",
            *PINNED_TINY_MODEL,
            "trainer.max_steps=3",
            "trainer.eval_every=0",
            "trainer.eval_sentences=5",
            "trainer.warmup_steps=0",
        ],
    )
    return run / "checkpoints" / "last.pt"


@pytest.fixture(scope="module")
def sentences(data_root) -> list[str]:
    return read_lines(data_root / "multi30k" / "test_2016_flickr.en.gz")


def numbered_input(sentences: list[str], count: int) -> list[str]:
    """Real sentences, with an empty line at every 7th position (a visible order mark)."""
    return ["" if i % 7 == 3 else sentences[i % len(sentences)] for i in range(count)]


def env() -> dict[str, str]:
    return {**os.environ, "SEQ2SEQ_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_command_translates_5000_lines_one_line_out_per_line_in(tmp_path, checkpoint, sentences):
    lines = numbered_input(sentences, 5000)
    source, output = tmp_path / "in.en", tmp_path / "out.de"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seq2seq.commands.translate",
            "--checkpoint",
            str(checkpoint),
            "-i",
            str(source),
            "-o",
            str(output),
            "--chunk-lines",
            "700",  # 5000 is not a multiple: the last chunk is a partial one
            *FAST,
        ],
        capture_output=True,
        text=True,
        env=env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = output.read_text(encoding="utf-8").split("\n")
    assert out.pop() == ""  # the file ends with a newline
    assert len(out) == len(lines)
    # Empty in, empty out, at the same places; everything else got a translation.
    assert [i for i, line in enumerate(out) if not line] == [
        i for i, line in enumerate(lines) if not line
    ]


class CountingInput:
    """stdin.buffer whose lines are made on demand; counts how many were read."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = iter(lines)
        self.read_count = 0

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        line = next(self.lines)
        self.read_count += 1
        return (line + "\n").encode()

    def isatty(self) -> bool:
        return False


class RecordingOutput(io.StringIO):
    """stdout that notes, at each line written, how many input lines had been read."""

    def __init__(self, source: CountingInput) -> None:
        super().__init__()
        self.source = source
        self.ahead: list[int] = []  # lines read but not yet answered, at each output line

    def write(self, text: str) -> int:
        for _ in range(text.count("\n")):
            self.ahead.append(self.source.read_count - len(self.ahead) - 1)
        return super().write(text)


def test_input_is_read_one_chunk_at_a_time(monkeypatch, checkpoint, sentences):
    lines = numbered_input(sentences, 1000)
    stdin = CountingInput(lines)
    stdout = RecordingOutput(stdin)
    monkeypatch.setattr(sys, "stdin", type("Stdin", (), {"buffer": stdin})())
    monkeypatch.setattr(sys, "stdout", stdout)
    with pytest.raises(SystemExit) as info:
        translate_main(["--checkpoint", str(checkpoint), "--chunk-lines", "64", *FAST])
    assert info.value.code == 0
    assert stdin.read_count == 1000 and len(stdout.ahead) == 1000
    # Never more than one chunk read ahead of the output: memory is bounded by the chunk.
    assert max(stdout.ahead) <= 64
    assert stdout.ahead[0] == 63  # the first answer came after exactly one chunk
    out = stdout.getvalue().split("\n")[:-1]
    assert [i for i, line in enumerate(out) if not line] == [
        i for i, line in enumerate(lines) if not line
    ]


def test_output_appears_while_the_input_is_still_open(checkpoint, sentences):
    """Through a pipe: each chunk's translations arrive before the next chunk is sent."""
    chunk = 50
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "seq2seq.commands.translate",
            "--checkpoint",
            str(checkpoint),
            "--chunk-lines",
            str(chunk),
            *FAST,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env(),
    )
    received: queue.Queue[bytes] = queue.Queue()
    reader = threading.Thread(target=lambda: [received.put(line) for line in proc.stdout])
    reader.start()
    try:
        for round_ in range(3):
            block = numbered_input(sentences[round_ * chunk :], chunk)
            proc.stdin.write(("\n".join(block) + "\n").encode())
            proc.stdin.flush()
            # stdin stays open: these lines can only come from streaming.
            for _ in range(chunk):
                received.get(timeout=120)
        assert received.empty()
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
