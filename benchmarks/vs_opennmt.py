"""seq2seq beside OpenNMT-py 3.5.1: the same model, data, subwords and updates, timed alike.

    python benchmarks/vs_opennmt.py -o vs_opennmt.json
    python benchmarks/vs_opennmt.py --dry-run        # every command, in order; runs nothing

OpenNMT-py goes into its own virtual environment (WORKDIR/onmt-venv, skipped when it is
there): torch==2.13.0 first (`--torch-pip-args`, e.g. a CPU wheel index), then
opennmt-py --no-deps (its pins would replace that torch), then its runtime dependencies.

Both toolkits train the reference model (`+exp=en_de_ref`; for OpenNMT-py the same
recipe written as its YAML) on Multi30k en→de for `--updates` updates, one after the
other, never at once. seq2seq runs first, with its data cache off, so its start-up
always includes training the joint sentencepiece model; OpenNMT-py's `sentencepiece`
transform is then given that very model (RUN/tokenizer/src/spm.model, copied), since a
seq2seq run cannot load a given model file. Both log every 50 updates; the speed is the
median target tokens/s (pieces + end of sentence) of the intervals after the first, so
updates 1-50 are the warm-up. Neither validates or saves during the updates; each
validates and saves once after them.

The harness stamps each output line of each command as it arrives. Training start-up is
spawn to the line announcing the loop (seq2seq: "N batches per epoch"; OpenNMT-py:
"Start training loop"), plus onmt_build_vocab for OpenNMT-py; the loop is from there to
the line of the last update; teardown (final validation and save) is the rest.
Translation of the 1,000 test_2016_flickr sentences, greedy and beam 5, 128 sentences a
batch, is timed as a whole; its start-up is the same greedy command on the first
sentence alone, and generation is the difference. Each translation command runs
`--repeats` times and the fastest run counts: the first run of a toolkit after training
reads its libraries from disk, and a cold start-up would otherwise be charged to it.
BLEU is sacreBLEU against the raw references; peak RSS is the kernel's high-water mark
of each process (os.wait4).
Ratios are "advantage of seq2seq": >1 means seq2seq is faster (or smaller).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vs_opennmt_recipe import (
    BATCH,
    BEAM,
    CORPUS,
    LOG_EVERY,
    ONMT_ENV,
    SEARCHES,
    TEST,
    VERSIONS,
    export_command,
    install_commands,
    onmt_config,
    onmt_train_commands,
    our_train_command,
    shell_line,
    startup_run,
    translate_command,
    translations,
)
from vs_opennmt_report import (
    ONMT_LOOP,
    OUR_END,
    OUR_LOOP,
    ROWS,
    advantage,
    format_table,
    loop_window,
    measures,
    onmt_speeds,
    our_speeds,
    steady_median,
    their_value,
)

SIDES = {"seq2seq": "seq2seq", "onmt": "OpenNMT-py"}


class HarnessError(Exception):
    """A problem reported as one line (what, where, which log), without a traceback."""


@dataclass
class Finished:
    """One command run to its end: wall clock, peak RSS, and its stamped output lines."""

    command: list[str]
    wall_s: float
    peak_rss_mib: float
    log: Path
    lines: list[tuple[float, str]]  # (seconds since spawn, line)


# -- running commands --------------------------------------------------------------------


def child_env(onmt: bool) -> dict[str, str]:
    """Unbuffered output (the lines are stamped as they come); for OpenNMT-py, torch>=2.6
    must be let load its checkpoints, and nothing of this checkout's path leaks in."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(ONMT_ENV if onmt else {})}
    if onmt:
        env.pop("PYTHONPATH", None)
    return env


def run(command: list[str], log: Path, onmt: bool = False) -> Finished:
    """Run `command` alone to its end; each output line is stamped on arrival (start-up
    markers) and the kernel reports the process's peak RSS (wait4: no sampling)."""
    print(f"$ {shell_line(command, onmt)}\n  (log: {log})", flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=child_env(onmt),
        )
    except OSError as exc:
        raise HarnessError(f"cannot start {command[0]}: {exc.strerror}") from None
    stamped = []
    with log.open("w", encoding="utf-8") as out:
        for raw in child.stdout:
            text = raw.decode("utf-8", "replace")
            stamped.append((time.monotonic() - started, text.rstrip("\n")))
            out.write(text)
    child.stdout.close()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        name = command[2] if command[1:2] == ["-m"] else Path(command[0]).name
        raise HarnessError(f"{name} failed (exit status {child.returncode}); log: {log}")
    return Finished(command, wall, usage.ru_maxrss / 1024, log, stamped)


# -- the two sides -----------------------------------------------------------------------


def check_data(data_root: Path) -> None:
    missing = [n for n in CORPUS if not (data_root / "multi30k" / f"{n}.gz").is_file()]
    if missing:
        raise HarnessError(
            f"data: {', '.join(f'{n}.gz' for n in missing)} not in {data_root / 'multi30k'} "
            "(set --data-root or SEQ2SEQ_DATA)"
        )


def unpack_data(data_root: Path, work: Path) -> None:
    """Plain-text copies of the corpus for OpenNMT-py, and the first test sentence alone."""
    folder = work / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for name in CORPUS:
        if not (folder / name).is_file():
            with gzip.open(data_root / "multi30k" / f"{name}.gz", "rb") as f:
                (folder / f"{name}.part").write_bytes(f.read())
            (folder / f"{name}.part").replace(folder / name)
    first = (folder / f"{TEST}.en").read_text(encoding="utf-8").splitlines()[0]
    (folder / "first.en").write_text(first + "\n", encoding="utf-8")


def ensure_onmt(venv: Path, torch_pip_args: list[str], skip: bool, logs: Path) -> None:
    """Install OpenNMT-py unless its venv is already there."""
    if (venv / "bin" / "onmt_train").is_file():
        print(f"OpenNMT-py: using {venv}")
        return
    if skip:
        raise HarnessError(
            f"--skip-install: no OpenNMT-py in {venv} ({venv / 'bin' / 'onmt_train'} is "
            "missing); run once without --skip-install, or pass --venv"
        )
    for number, command in enumerate(install_commands(venv, torch_pip_args), 1):
        run(command, logs / f"install_{number}.log")


def train_result(
    done: Finished, start: re.Pattern, end: re.Pattern, speeds: dict, before: Finished | None
) -> dict:
    """A training command's timings from its stamped lines; `before` (onmt_build_vocab)
    had to run first and counts as start-up."""
    window = loop_window(done.lines, start, end)
    if window is None:
        raise HarnessError(f"no start or end of the training loop found; log: {done.log}")
    speed = steady_median(speeds)
    if speed is None:
        raise HarnessError(f"no speed logged after update {LOG_EVERY}; log: {done.log}")
    extra = before.wall_s if before else 0.0
    return {
        "command": shell_line(done.command),
        "log": str(done.log),
        "tgt_tok_s": round(speed, 1),
        "tgt_tok_s_by_step": {str(step): value for step, value in sorted(speeds.items())},
        "total_s": round(extra + done.wall_s, 2),
        "startup_s": round(extra + window[0], 2),
        "loop_s": round(window[1] - window[0], 2),
        "teardown_s": round(done.wall_s - window[1], 2),
        "peak_rss_mib": round(max(done.peak_rss_mib, before.peak_rss_mib if before else 0), 1),
    }


AUTO_CHOICE = re.compile(r"precision=auto: (\w+), because")  # seq2seq logs what auto chose


def train_seq2seq(work: Path, data_root: Path, updates: int, precision: str) -> dict:
    run_dir = work / "seq2seq" / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    command = our_train_command(work, data_root, updates, precision)
    done = run(command, work / "seq2seq" / "logs" / "train.log")
    metrics = run_dir / "metrics.jsonl"
    lines = metrics.read_text(encoding="utf-8").splitlines() if metrics.is_file() else []
    found = train_result(done, OUR_LOOP, OUR_END, our_speeds(lines), None)
    chosen = [m[1] for _, text in done.lines if (m := AUTO_CHOICE.search(text))]
    return {**found, "precision": chosen[0] if chosen else precision}


def export_seq2seq(work: Path) -> dict:
    """The model folder seq2seq translates from; exporting is a one-off, timed apart."""
    done = run(export_command(work), work / "seq2seq" / "logs" / "export.log")
    return {"command": shell_line(export_command(work)), "wall_s": round(done.wall_s, 2)}


def hand_over_spm(work: Path) -> str:
    """Copy the joint sentencepiece model seq2seq trained to OpenNMT-py's folder; its sha256."""
    tokenizer = work / "seq2seq" / "run" / "tokenizer"
    src, tgt = tokenizer / "src" / "spm.model", tokenizer / "tgt" / "spm.model"
    if not src.is_file():
        raise HarnessError(f"no sentencepiece model at {src}: the seq2seq side must run first")
    if tgt.is_file() and tgt.read_bytes() != src.read_bytes():
        raise HarnessError(f"{src} and {tgt} differ: the comparison needs one joint model")
    target = work / "onmt" / "spm.model"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    return hashlib.sha256(target.read_bytes()).hexdigest()


def train_onmt(work: Path, venv: Path, updates: int) -> dict:
    import yaml

    spm_sha256 = hand_over_spm(work)
    shutil.rmtree(work / "onmt" / "run", ignore_errors=True)
    config = yaml.safe_dump(onmt_config(work, updates), sort_keys=False)
    (work / "onmt" / "config.yaml").write_text(config, encoding="utf-8")
    vocab_command, train_command = onmt_train_commands(work, venv)
    logs = work / "onmt" / "logs"
    vocab = run(vocab_command, logs / "build_vocab.log", onmt=True)
    done = run(train_command, logs / "train.log", onmt=True)
    speeds = onmt_speeds([text for _, text in done.lines])
    end = re.compile(rf"Step\s+{updates}\b")
    return {
        **train_result(done, ONMT_LOOP, end, speeds, vocab),
        "command": shell_line(train_command, True),
        "build_vocab_command": shell_line(vocab_command, True),
        "build_vocab_s": round(vocab.wall_s, 2),
        "spm_sha256": spm_sha256,
    }


def bleu(hypotheses: Path, references: Path) -> tuple[float, str]:
    """sacreBLEU (its defaults) of a detokenized output against the raw references."""
    from sacrebleu.metrics import BLEU

    hyps = hypotheses.read_text(encoding="utf-8").splitlines()
    refs = references.read_text(encoding="utf-8").splitlines()
    if len(hyps) != len(refs):
        raise HarnessError(f"{hypotheses}: {len(hyps)} lines, the references have {len(refs)}")
    metric = BLEU()
    return round(metric.corpus_score(hyps, [refs]).score, 2), str(metric.get_signature())


def translate_side(side: str, work: Path, venv: Path, updates: int, repeats: int) -> dict:
    """Start-up (the first sentence alone, greedy and beam), then greedy and beam over the
    test set; each the fastest of `repeats` runs."""
    found: dict = {}
    for name, beam, src in translations(work, side):
        out = work / side / f"{name}.de"
        command = translate_command(side, work, venv, updates, beam, src, out)
        log = work / side / "logs" / f"translate_{name}.log"
        runs = [run(command, log, side == "onmt") for _ in range(repeats)]
        done = min(runs, key=lambda r: r.wall_s)
        found[name] = {
            "command": shell_line(command, side == "onmt"),
            "wall_s": round(done.wall_s, 2),
            "walls_s": [round(r.wall_s, 2) for r in runs],
            "peak_rss_mib": round(max(r.peak_rss_mib for r in runs), 1),
        }
        if not name.startswith("first"):
            score, signature = bleu(out, work / "data" / f"{TEST}.de")
            generation = done.wall_s - found[startup_run(name)]["wall_s"]
            found[name].update(generation_s=round(generation, 2), bleu=score, signature=signature)
    return found


def versions(side: str, work: Path, venv: Path) -> dict:
    if side == "seq2seq":
        import torch

        import seq2seq

        return {"seq2seq": seq2seq.__version__, "torch": torch.__version__}
    log = work / "onmt" / "logs" / "versions.log"
    done = run([str(venv / "bin" / "python"), "-c", VERSIONS], log, onmt=True)
    found = done.lines[-1][1].split() if done.lines else []
    if len(found) != 2:
        raise HarnessError(f"cannot read the torch and OpenNMT-py versions; log: {log}")
    return {"opennmt-py": found[1], "torch": found[0]}


def run_side(side: str, args: argparse.Namespace, work: Path, venv: Path) -> dict:
    print(f"== {SIDES[side]}", flush=True)
    found = {"toolkit": SIDES[side], "updates": args.updates, **versions(side, work, venv)}
    if side == "seq2seq":
        found["train"] = train_seq2seq(work, args.data_root, args.updates, args.train_precision)
        found["train_precision"] = args.train_precision
        found["export"] = export_seq2seq(work)
    else:
        found["train"] = train_onmt(work, venv, args.updates)
    found["translate"] = translate_side(side, work, venv, args.updates, args.repeats)
    return found


# -- the machine and the report ----------------------------------------------------------


def machine() -> dict:
    """What every number must be read with: the CPU, its flags, torch and its threads."""
    import platform

    import torch

    from seq2seq.hardware import cpu_description, cpu_flags

    flags = sorted(cpu_flags() or ())
    return {
        "cpu": cpu_description(),
        "simd_flags": [f for f in flags if f.startswith(("avx", "amx", "fma", "f16c"))],
        "cpu_flags": flags,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy_blas": numpy_blas(),
        "python": platform.python_version(),
    }


def numpy_blas() -> dict:
    """numpy's BLAS and the kernel it chose: the numpy runtime's matrix products, whose
    speed an OPENBLAS_CORETYPE in the environment can cap."""
    import numpy  # noqa: F401  (loads its BLAS, for threadpoolctl to find)
    from threadpoolctl import threadpool_info

    blas = next((i for i in threadpool_info() if i.get("user_api") == "blas"), {})
    return {
        "library": blas.get("internal_api"),
        "version": blas.get("version"),
        "kernel": blas.get("architecture"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
    }


def matmul_gflops(dtype_name: str, size: int = 1024, seconds: float = 1.0) -> float:
    """The best GFLOP/s of a size² torch.mm over about `seconds`: the yardstick the
    training speeds are read against (a CPU without native bf16 emulates it, slowly)."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = (torch.randn(size, size).to(dtype) for _ in range(2))
    return best_gflops(lambda: torch.mm(a, b), 2 * size**3, seconds)


def numpy_matmul_gflops(size: int = 1024, seconds: float = 1.0) -> float:
    """The same for numpy's float32 product: the yardstick of the numpy runtime."""
    import numpy as np

    a, b = (np.random.default_rng(0).random((size, size), np.float32) for _ in range(2))
    return best_gflops(lambda: a @ b, 2 * size**3, seconds)


def best_gflops(product, flops: int, seconds: float) -> float:
    product()  # untimed: the first product allocates and warms the caches
    best, spent = float("inf"), 0.0
    while spent < seconds:
        started = time.perf_counter()
        product()
        took = time.perf_counter() - started
        best, spent = min(best, took), spent + took
    return round(flops / best / 1e9, 1)


def print_report(report: dict) -> None:
    m, ours, theirs = report["machine"], report["seq2seq"], report["onmt"]
    print(f"\n{m['cpu']}; flags: {' '.join(m['simd_flags']) or 'none of AVX/AMX/FMA'}")
    print(
        f"torch {m['torch']}, {m['torch_threads']} threads; torch.mm 1024²: "
        f"fp32 {m['fp32_matmul_gflops']} GFLOP/s, bf16 {m['bf16_matmul_gflops']} GFLOP/s"
    )
    blas = m.get("numpy_blas") or {}
    pinned = (
        f", OPENBLAS_CORETYPE={blas['OPENBLAS_CORETYPE']}" if blas.get("OPENBLAS_CORETYPE") else ""
    )
    print(
        f"numpy {blas.get('library')} {blas.get('version')}, kernel {blas.get('kernel')}"
        f"{pinned}; numpy fp32 1024²: {m.get('numpy_fp32_matmul_gflops')} GFLOP/s"
    )
    precision = (ours or {}).get("train", {}).get("precision", "?")
    print(
        f"{report['settings']['updates']} updates; seq2seq trains in {precision}, OpenNMT-py "
        f"in fp32; speed = median after update {LOG_EVERY}\n"
    )
    print(format_table(measures(ours), measures(theirs)))
    if ours and theirs and ours["torch"] != theirs["torch"]:
        print(f"\nwarning: torch differs: seq2seq {ours['torch']}, OpenNMT-py {theirs['torch']}")


def earlier_result(work: Path, side: str, updates: int) -> dict | None:
    """A side not run this time: its last result in the work folder, if it had as many updates."""
    path = work / side / "result.json"
    if not path.is_file():
        return None
    found = json.loads(path.read_text(encoding="utf-8"))
    return {**found, "reused_from": str(path)} if found.get("updates") == updates else None


def benchmark(args: argparse.Namespace, work: Path, venv: Path, sides: list[str]) -> dict:
    check_data(args.data_root)
    if "onmt" in sides:
        ensure_onmt(venv, shlex.split(args.torch_pip_args), args.skip_install, work / "logs")
    unpack_data(args.data_root, work)
    info = machine()
    results = {}
    for side in SIDES:
        if side in sides:
            results[side] = run_side(side, args, work, venv)
            text = json.dumps(results[side], indent=2, ensure_ascii=False)
            (work / side / "result.json").write_text(text + "\n", encoding="utf-8")
        else:
            results[side] = earlier_result(work, side, args.updates)
    info["fp32_matmul_gflops"] = matmul_gflops("float32")  # after the toolkits: no overlap
    info["bf16_matmul_gflops"] = matmul_gflops("bfloat16")
    info["numpy_fp32_matmul_gflops"] = numpy_matmul_gflops()
    ours, theirs = measures(results["seq2seq"]), measures(results["onmt"])
    return {
        "machine": info,
        "settings": {
            "updates": args.updates,
            "seq2seq_train_precision": args.train_precision,
            "log_every": LOG_EVERY,
            "batch_sentences": BATCH,
            "beam_size": BEAM,
            "translate_repeats": args.repeats,
            "data_root": str(args.data_root),
            "workdir": str(work),
            "command": shlex.join([sys.executable, *sys.argv]),
        },
        **results,
        "advantage_of_seq2seq": {
            key: advantage(ours.get(key), their_value(theirs, key), better)
            for key, _, better in ROWS
            if better
        },
        "advantage_means": "tok/s: seq2seq/OpenNMT-py; seconds and MiB: OpenNMT-py/seq2seq; "
        "so >1 favours seq2seq. BLEU: seq2seq minus OpenNMT-py, in points",
    }


# -- the command line --------------------------------------------------------------------


def plan(args: argparse.Namespace, work: Path, venv: Path, sides: list[str]) -> list[str]:
    """Every step of a run in order: commands as shell lines, in-process steps as comments."""
    steps = [f"# check {args.data_root / 'multi30k'} holds {', '.join(CORPUS)} (.gz)"]
    if "onmt" in sides and (venv / "bin" / "onmt_train").is_file():
        steps.append(f"# OpenNMT-py is in {venv}: no install")
    elif "onmt" in sides and args.skip_install:
        steps.append(f"# --skip-install and no OpenNMT-py in {venv}: it would stop here")
    elif "onmt" in sides:
        steps += [shell_line(c) for c in install_commands(venv, shlex.split(args.torch_pip_args))]
    steps.append(f"# unpack them into {work / 'data'}; its first.en: the first {TEST}.en line")
    for side in sides:
        onmt = side == "onmt"
        if onmt:
            steps.append(shell_line([str(venv / "bin" / "python"), "-c", VERSIONS], True))
            steps.append(
                f"# copy {work / 'seq2seq/run/tokenizer/src/spm.model'} to "
                f"{work / 'onmt/spm.model'}; write {work / 'onmt/config.yaml'}"
            )
            steps += [shell_line(c, True) for c in onmt_train_commands(work, venv)]
        else:
            command = our_train_command(work, args.data_root, args.updates, args.train_precision)
            steps.append(shell_line(command))
            steps.append(shell_line(export_command(work)))
        for name, beam, src in translations(work, side):
            out = work / side / f"{name}.de"
            command = translate_command(side, work, venv, args.updates, beam, src, out)
            steps.append(f"# {args.repeats} times, the fastest counts:")
            steps.append(shell_line(command, onmt))
        steps.append(f"# sacreBLEU of {work / side}/{{{','.join(SEARCHES)}}}.de vs {TEST}.de")
    steps.append("# torch.mm 1024x1024 peaks, fp32 then bf16, then numpy fp32, ~1 s each")
    return steps


def update_count(text: str) -> int:
    value = int(text)
    if value < 2 * LOG_EVERY or value % LOG_EVERY:
        raise argparse.ArgumentTypeError(f"a multiple of {LOG_EVERY}, at least {2 * LOG_EVERY}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from seq2seq.commands.common import positive_int

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--updates",
        type=update_count,
        default=300,
        help="training updates per toolkit, a multiple of 50; the first 50 are the warm-up "
        "(default: 300)",
    )
    parser.add_argument(
        "--train-precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="seq2seq's trainer.precision (default: auto, bf16 where the CPU has it native); "
        "OpenNMT-py trains in fp32",
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("outputs/vs_opennmt"), help="runs, logs, outputs"
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(os.environ.get("SEQ2SEQ_DATA", "data")),
        help="holds multi30k/*.gz (default: $SEQ2SEQ_DATA, else ./data)",
    )
    parser.add_argument("--venv", type=Path, help="OpenNMT-py's venv (default: WORKDIR/onmt-venv)")
    parser.add_argument(
        "--torch-pip-args",
        default=os.environ.get("TORCH_PIP_ARGS", ""),
        help="extra pip arguments for the torch install only, e.g. '--index-url "
        "https://download.pytorch.org/whl/cpu' (default: $TORCH_PIP_ARGS)",
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=3,
        help="runs of each translation command; the fastest counts (default: 3)",
    )
    parser.add_argument("--skip-install", action="store_true", help="never install OpenNMT-py")
    parser.add_argument(
        "--only",
        choices=list(SIDES),
        help="run one toolkit; the other's last result in WORKDIR (same --updates) is reused",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the steps, run nothing")
    parser.add_argument("-o", "--output", type=Path, help="write the report as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.data_root = args.data_root.resolve()
    work = args.workdir.resolve()
    venv = (args.venv or work / "onmt-venv").resolve()
    sides = [args.only] if args.only else list(SIDES)
    if args.dry_run:
        print("\n".join(plan(args, work, venv, sides)))
        return 0
    try:
        report = benchmark(args, work, venv, sides)
    except HarnessError as exc:
        print(f"vs_opennmt: {exc}", file=sys.stderr)
        return 1
    print_report(report)
    if args.output:
        args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
