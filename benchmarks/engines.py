"""`seq2seq-translate` on torch against the numpy runtime: wall clock with start-up, peak
memory, BLEU, and how many lines come out identical.

The checkpoint is exported once to a model folder; torch translates from the
checkpoint (`--engine torch`), the runtime from the folder (`--engine numpy`). Each
command runs alone, `--repeats` times, and the fastest run counts.

    python benchmarks/engines.py --checkpoint runs/en_de/checkpoints/best.pt
    python benchmarks/engines.py --checkpoint CK --src test.en --ref test.de -o engines.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sacrebleu
from eval_set import add_test_set_arguments, read_test_set

from seq2seq.hardware import cpu_description

# name → (input: one line or the test set, extra flags)
RUNS = {
    "one line": ("first", []),
    "greedy": ("test", []),
    "greedy, --shortlist": ("test", ["--shortlist"]),
    "beam 5": ("test", ["--search", "beam", "--beam-size", "5"]),
    "beam 5, --shortlist": ("test", ["--search", "beam", "--beam-size", "5", "--shortlist"]),
}


def timed(command: list[str]) -> tuple[float, float]:
    """Wall clock (s) and peak RSS (MiB) of one run; a failure stops the benchmark."""
    with tempfile.TemporaryFile() as log:
        started = time.monotonic()
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            raise SystemExit(f"failed: {' '.join(command)}\n{log.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a checkpoint file or run folder")
    add_test_set_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command")
    parser.add_argument("-o", "--output", help="also write the results here, as JSON")
    args = parser.parse_args(argv)
    src, ref = read_test_set(args)
    work = Path(tempfile.mkdtemp(prefix="engines-"))
    inputs = {"first": work / "first.txt", "test": work / "test.txt"}
    inputs["first"].write_text(src[0] + "\n", encoding="utf-8")
    inputs["test"].write_text("\n".join(src) + "\n", encoding="utf-8")
    folder = work / "model"
    export = [sys.executable, "-m", "seq2seq.commands.export", args.checkpoint]
    subprocess.run([*export, "-o", str(folder), "--no-scores"], check=True)
    engines = {"torch": args.checkpoint, "numpy": str(folder)}
    print(f"CPU: {cpu_description()}; fastest of {args.repeats} runs, start-up included")
    results = []
    for name, (given, flags) in RUNS.items():
        row: dict = {"run": name}
        texts = {}
        for engine, checkpoint in engines.items():
            out = work / f"{engine}.txt"
            command = [sys.executable, "-m", "seq2seq.commands.translate", "--engine", engine]
            command += ["--checkpoint", checkpoint, "-i", str(inputs[given]), "-o", str(out)]
            runs = [timed(command + flags) for _ in range(args.repeats)]
            row[f"{engine}_s"] = round(min(wall for wall, _ in runs), 2)
            row[f"{engine}_peak_mib"] = round(max(rss for _, rss in runs), 1)
            texts[engine] = out.read_text(encoding="utf-8").splitlines()
            if given == "test":
                row[f"{engine}_bleu"] = round(sacrebleu.corpus_bleu(texts[engine], [ref]).score, 2)
        same = sum(a == b for a, b in zip(texts["torch"], texts["numpy"], strict=True))
        row["identical_lines"] = f"{same}/{len(texts['torch'])}"
        results.append(row)
        print(json.dumps(row), flush=True)
    if args.output:
        report = {"cpu": cpu_description(), "checkpoint": args.checkpoint, "runs": results}
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
