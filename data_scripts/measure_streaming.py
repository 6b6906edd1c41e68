"""Measure seq2seq-translate's streaming: lines in/out, wall time, lines/s and peak RSS.

    python data_scripts/measure_streaming.py --checkpoint RUN_DIR/checkpoints/best.pt
    python data_scripts/measure_streaming.py --checkpoint CKPT --lines 10000 50000 --threads 1

For each N (default: 10,000 and 1,000,000) it writes an N-line input by cycling the real
Multi30k test sentences ($SEQ2SEQ_DATA/multi30k/test_2016_flickr.en.gz, or --source),
runs

    seq2seq-translate --checkpoint CKPT --search greedy -i in.txt -o out.txt

as a child process, and reads the child's own peak resident set size from wait4(2)
(the same number as `/usr/bin/time -v`'s "Maximum resident set size"). It also samples
the child's RSS while it runs (/proc/PID/status, Linux): the RSS when the first output
line appeared and at the end show whether memory grows with the input. It trains
nothing: give it any checkpoint (a real one for real speed numbers). Extra options for
seq2seq-translate go after `--`, e.g. `-- --batch-size 128 --max-length 60`.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DEFAULT_SOURCE = Path("multi30k") / "test_2016_flickr.en.gz"


def data_root() -> Path:
    root = os.environ.get("SEQ2SEQ_DATA")
    if root:
        return Path(root)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def read_sentences(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        sentences = [line.rstrip("\n") for line in f]
    sentences = [s for s in sentences if s.strip()]
    if not sentences:
        raise SystemExit(f"error: {path} holds no sentences")
    return sentences


def write_input(path: Path, sentences: list[str], lines: int) -> int:
    """N lines cycling `sentences`, written in blocks (the generator never holds N lines)."""
    size = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        cycle = itertools.islice(itertools.cycle(sentences), lines)
        while block := list(itertools.islice(cycle, 10_000)):
            text = "\n".join(block) + "\n"
            f.write(text)
            size += len(text.encode("utf-8"))
    return size


def count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
    return count


def translate_command(checkpoint: str, source: Path, output: Path, extra: list[str]) -> list[str]:
    exe = shutil.which("seq2seq-translate")
    head = [exe] if exe else [sys.executable, "-m", "seq2seq.commands.translate"]
    return [
        *head,
        "--checkpoint",
        checkpoint,
        "--search",
        "greedy",
        "-i",
        str(source),
        "-o",
        str(output),
        *extra,
    ]


def rss_kib(pid: int) -> int | None:
    """Current resident set size of `pid` in KiB (Linux), or None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class Sampler(threading.Thread):
    """Polls the child's RSS and the output file: when output first appeared, and RSS then."""

    def __init__(self, pid: int, output: Path, start: float, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.output, self.t0, self.interval = pid, output, start, interval
        self.first_output_s: float | None = None
        self.rss_at_first_output: int | None = None
        self.last_rss: int | None = None
        self.max_sampled_rss = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            rss = rss_kib(self.pid)
            if rss is not None:
                self.last_rss = rss
                self.max_sampled_rss = max(self.max_sampled_rss, rss)
            if self.first_output_s is None:
                try:
                    if self.output.stat().st_size > 0:
                        self.first_output_s = time.monotonic() - self.t0
                        self.rss_at_first_output = rss
                except OSError:
                    pass
            self.stop.wait(self.interval)


def measure(
    checkpoint: str,
    lines: int,
    sentences: list[str],
    workdir: Path,
    extra: list[str],
    threads: int | None,
    keep: bool,
) -> dict:
    source = workdir / f"in_{lines}.txt"
    output = workdir / f"out_{lines}.txt"
    input_bytes = write_input(source, sentences, lines)
    output.unlink(missing_ok=True)
    command = translate_command(checkpoint, source, output, extra)
    env = dict(os.environ)
    if threads:
        command += ["--threads", str(threads)]
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.monotonic()
    child = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    sampler = Sampler(child.pid, output, start)
    sampler.start()
    # stderr drained by a thread, so a chatty child can never block on a full pipe.
    errors: list[bytes] = []
    drain = threading.Thread(target=lambda: errors.append(child.stderr.read()), daemon=True)
    drain.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop.set()
    sampler.join()
    drain.join()
    stderr = b"".join(errors).decode("utf-8", "replace")
    if child.returncode != 0:
        raise SystemExit(
            f"error: seq2seq-translate exited with {child.returncode}:\n{stderr[-4000:]}"
        )
    lines_out = count_lines(output)
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak_kib = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
    result = {
        "lines_in": lines,
        "lines_out": lines_out,
        "input_mib": round(input_bytes / 2**20, 1),
        "wall_s": round(wall, 2),
        "lines_per_s": round(lines / wall, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "rss_at_first_output_mib": (
            round(sampler.rss_at_first_output / 1024, 1) if sampler.rss_at_first_output else None
        ),
        "rss_at_end_mib": round(sampler.last_rss / 1024, 1) if sampler.last_rss else None,
        "first_output_s": (
            round(sampler.first_output_s, 2) if sampler.first_output_s is not None else None
        ),
        "command": " ".join(command),
    }
    if not keep:
        source.unlink(missing_ok=True)
        output.unlink(missing_ok=True)
    return result


def _number(value: float | None, spec: str) -> str:
    return format(float("nan") if value is None else value, spec)


def format_row(r: dict) -> str:
    return (
        f"{r['lines_in']:>10,} {r['lines_out']:>10,} {r['wall_s']:>9.1f} "
        f"{r['lines_per_s']:>9.1f} {r['peak_rss_mib']:>13.1f} "
        f"{_number(r['rss_at_first_output_mib'], '>12.1f')} "
        f"{_number(r['rss_at_end_mib'], '>9.1f')} {_number(r['first_output_s'], '>10.2f')}"
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Options after `--` go to seq2seq-translate.",
    )
    parser.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    parser.add_argument(
        "--lines", type=int, nargs="+", default=[10_000, 1_000_000], help="input sizes N"
    )
    parser.add_argument(
        "--source",
        type=Path,
        help=f"sentences to cycle (default: $SEQ2SEQ_DATA/{DEFAULT_SOURCE})",
    )
    parser.add_argument("--workdir", type=Path, help="where in/out files go (default: a temp dir)")
    parser.add_argument("--threads", type=int, help="torch threads of seq2seq-translate")
    parser.add_argument("--keep", action="store_true", help="keep the input and output files")
    parser.add_argument("--json", type=Path, help="also append the results to this JSONL file")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.lines):
        parser.error("--lines: every N must be >= 1")
    source = args.source or data_root() / DEFAULT_SOURCE
    if not source.exists():
        parser.error(f"{source} not found: set SEQ2SEQ_DATA or pass --source FILE")
    sentences = read_sentences(source)
    with tempfile.TemporaryDirectory(prefix="seq2seq-stream-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"source: {source} ({len(sentences)} sentences, cycled)", flush=True)
        header = (
            f"{'lines in':>10} {'lines out':>10} {'wall s':>9} {'lines/s':>9} "
            f"{'peak RSS MiB':>13} {'RSS@1st out':>12} {'RSS@end':>9} {'1st out s':>10}"
        )
        print(header, flush=True)
        results = []
        for n in args.lines:
            r = measure(args.checkpoint, n, sentences, workdir, extra, args.threads, args.keep)
            results.append(r)
            print(format_row(r), flush=True)
            if r["lines_out"] != r["lines_in"]:
                print(f"error: {r['lines_out']} output lines for {n} input lines", file=sys.stderr)
                return 1
        print(f"command: {results[-1]['command']}")
        if args.json:
            with open(args.json, "a", encoding="utf-8") as f:
                for r in results:
                    f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
