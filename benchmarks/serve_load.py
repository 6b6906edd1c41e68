"""Load benchmark of `seq2seq-serve`: many concurrent clients, some of them hostile.

    python benchmarks/serve_load.py --model runs/en_de -o serve_load.json

For each mode (dynamic batching on, then off) it starts the server in a subprocess,
waits for /health, sends `--requests` requests from `--clients` concurrent clients on
127.0.0.1 and stops the server with SIGTERM (it must exit 0). Each valid request
carries one sentence of Multi30k test_2016_flickr (cycling through them); a share of
the requests (`--hostile`) are bad ones: invalid JSON, wrong types, invalid UTF-8,
control characters, empty texts, a text or a body over the limits, too many texts,
unknown fields, an unknown model.

Every answer is checked: a bad request must get its 4xx with a JSON error body; a
valid one must get 200 with exactly one translation, equal to the translation the
model gives that sentence alone (computed in-process first, with the server's default
search: greedy). It reports server errors (5xx), lost or mismatched answers, the
latency of valid requests (p50, p99) and sentences per second; it prints a table and
writes JSON (`-o`). The exit status is 1 when any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SEQ2SEQ_DATA", "data"))
TEST_FILE = "multi30k/test_2016_flickr.en.gz"


@dataclass
class Planned:
    """One request to send: its body, and what must come back."""

    kind: str  # "valid" or the kind of hostile input
    body: bytes
    status: int  # the expected status code
    sentence: int | None = None  # valid requests: index into the test sentences
    content_type: str = "application/json"


@dataclass
class Answer:
    status: int | None  # None: no answer (connection error, timeout)
    body: bytes
    seconds: float
    failure: str = ""


@dataclass
class RunResult:
    mode: str
    server_command: list[str]
    wall_s: float
    answers: list[Answer]
    exit_status: int | None
    batches: dict = field(default_factory=dict)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    cpu_s: dict = field(default_factory=dict)  # CPU seconds of the server and the clients


# -- what to send ------------------------------------------------------------------------


def hostile_requests(model: str, max_texts: int, max_chars: int, max_body: int) -> list[Planned]:
    """One of each kind of bad request the server must refuse with a 4xx."""

    def js(data) -> bytes:
        return json.dumps(data).encode()

    return [
        Planned("invalid JSON", b'{"texts": ["A dog runs.",', 400),
        Planned("not an object", js(["A dog runs."]), 400),
        Planned("wrong type", js({"texts": "A dog runs."}), 422),
        Planned("wrong item type", js({"texts": [42]}), 422),
        Planned("invalid UTF-8", b'{"texts": ["A dog \xff\xfe runs."]}', 400),
        Planned("control character", js({"texts": ["A dog\x07 runs."]}), 422),
        Planned("empty text", js({"texts": [""]}), 422),
        Planned("no texts", js({"texts": []}), 422),
        Planned("text too long", js({"texts": ["a" * (max_chars + 1)]}), 413),
        Planned("too many texts", js({"texts": ["A dog runs."] * (max_texts + 1)}), 413),
        Planned("body too large", js({"texts": ["a " * (max_body // 2 + 16)]}), 413),
        Planned("unknown field", js({"texts": ["A dog runs."], "colour": "red"}), 422),
        Planned("unknown model", js({"texts": ["A dog runs."], "model": model + "-nope"}), 404),
    ]


def plan(
    requests: int, hostile_share: float, sentences: list[str], hostile: list[Planned], seed: int
) -> list[Planned]:
    """`requests` requests in a fixed shuffled order; valid ones cycle through sentences."""
    n_hostile = round(requests * hostile_share)
    where = set(random.Random(seed).sample(range(requests), n_hostile))
    planned, valid, bad = [], 0, 0
    for i in range(requests):
        if i in where:
            planned.append(hostile[bad % len(hostile)])
            bad += 1
        else:
            index = valid % len(sentences)
            body = json.dumps({"texts": [sentences[index]]}).encode()
            planned.append(Planned("valid", body, 200, sentence=index))
            valid += 1
    return planned


# -- what must come back -----------------------------------------------------------------


def expected_translations(model_path: str, sentences: list[str]) -> dict:
    """The model's greedy translations, each sentence alone and all in batches of 64."""
    import torch

    from seq2seq.translation.translator import Translator

    translator = Translator.from_pretrained(model_path)
    started = time.perf_counter()
    alone = [translator.translate(sentence).text for sentence in sentences]
    alone_s = time.perf_counter() - started
    started = time.perf_counter()
    batched = [t.text for t in translator.translate(sentences)]
    batched_s = time.perf_counter() - started
    differ = [i for i, (a, b) in enumerate(zip(alone, batched, strict=True)) if a != b]
    return {
        "alone": alone,
        "batched": batched,
        "differ": differ,
        "alone_s": alone_s,
        "batched_s": batched_s,
        "torch_threads": torch.get_num_threads(),
    }


def check(planned: list[Planned], answers: list[Answer], expected: dict) -> dict:
    """Counts of each outcome; every problem is listed (the first 20 in full)."""
    alone, batched = expected["alone"], expected["batched"]
    by_text = {text: i for i, text in enumerate(alone)}
    counts = {
        "valid": 0,
        "hostile": 0,
        "ok": 0,
        "4xx": 0,
        "5xx": 0,
        "lost": 0,
        "mismatched": 0,
        "hostile_wrong": 0,
        "batch_noise": 0,
    }
    problems: list[str] = []
    latencies: list[float] = []
    for number, (request, answer) in enumerate(zip(planned, answers, strict=True)):
        counts["valid" if request.kind == "valid" else "hostile"] += 1
        if answer.status is None:
            counts["lost"] += 1
            problems.append(f"#{number} {request.kind}: no answer ({answer.failure})")
            continue
        if answer.status >= 500:
            counts["5xx"] += 1
            problems.append(f"#{number} {request.kind}: {answer.status} {answer.body[:200]!r}")
            continue
        if 400 <= answer.status < 500:
            counts["4xx"] += 1
        if request.kind != "valid":
            problem = hostile_problem(request, answer)
            if problem:
                counts["hostile_wrong"] += 1
                problems.append(f"#{number} {request.kind}: {problem}")
            continue
        latencies.append(answer.seconds)
        problem = valid_problem(request, answer, alone, batched, by_text)
        if problem == "batch noise":
            counts["batch_noise"] += 1
        elif problem:
            counts["mismatched"] += 1
            problems.append(f"#{number} sentence {request.sentence}: {problem}")
        else:
            counts["ok"] += 1
    return {"counts": counts, "problems": problems, "latencies": latencies}


def hostile_problem(request: Planned, answer: Answer) -> str:
    if not 400 <= answer.status < 500:
        return f"status {answer.status}, expected a 4xx"
    try:
        error = json.loads(answer.body)["error"]
        assert error["status"] == answer.status and isinstance(error["message"], str)
    except (ValueError, KeyError, TypeError, AssertionError):
        return f"status {answer.status} without a JSON error body: {answer.body[:200]!r}"
    if answer.status != request.status:
        return f"status {answer.status}, the documented one is {request.status}"
    return ""


def valid_problem(
    request: Planned, answer: Answer, alone: list[str], batched: list[str], by_text: dict
) -> str:
    if answer.status != 200:
        return f"status {answer.status}: {answer.body[:200]!r}"
    try:
        translations = json.loads(answer.body)["translations"]
        texts = [t["text"] for t in translations]
    except (ValueError, KeyError, TypeError):
        return f"not a translation answer: {answer.body[:200]!r}"
    if len(texts) != 1:
        return f"{len(texts)} translations for one text"
    want = alone[request.sentence]
    if texts[0] == want:
        return ""
    other = by_text.get(texts[0])
    if other is not None:
        return f"got the translation of sentence {other}: {texts[0]!r}"
    if texts[0] == batched[request.sentence]:
        return "batch noise"  # what the same sentence gives in another batch
    return f"got {texts[0]!r}, expected {want!r}"


# -- the server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(args: argparse.Namespace, batching: bool, port: int) -> list[str]:
    command = [sys.executable, "-m", "seq2seq.commands.serve"]
    command += ["--model", f"{args.name}={args.model}", "--port", str(port)]
    if not batching:
        return [*command, "--no-batching"]
    if args.max_batch_size:
        command += ["--max-batch-size", str(args.max_batch_size)]
    if args.max_wait_ms is not None:
        command += ["--max-wait-ms", f"{args.max_wait_ms:g}"]
    return command


def wait_for_health(url: str, server: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}):\n{tail(log)}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit(f"no /health answer within {timeout:g} s:\n{tail(log)}")


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (None: this one), in seconds."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def batch_stats(url: str) -> dict:
    """Sentences and batches decoded so far, from /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = {}
    for key in ("sum", "count"):
        match = re.search(rf"^seq2seq_batch_sentences_{key}\{{[^}}]*\}} (\S+)$", text, re.M)
        found[key] = float(match.group(1)) if match else 0.0
    return found


async def send_all(url: str, planned: list[Planned], clients: int, timeout: float) -> list:
    """Every planned request, `clients` at a time; answers in the order of `planned`."""
    answers: list[Answer | None] = [None] * len(planned)
    todo = iter(range(len(planned)))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        for number in todo:  # a shared iterator: each request is sent once
            request = planned[number]
            headers = {"content-type": request.content_type}
            started = time.perf_counter()
            try:
                response = await http.post(url, content=request.body, headers=headers)
                answers[number] = Answer(
                    response.status_code, response.content, time.perf_counter() - started
                )
            except httpx.HTTPError as exc:
                failure = f"{type(exc).__name__}: {exc}"
                answers[number] = Answer(None, b"", time.perf_counter() - started, failure)

    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return answers


def run_mode(args, mode: str, planned: list[Planned], warmup: list[Planned]) -> RunResult:
    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = server_command(args, mode == "batching", port)
    log = Path(tempfile.mkstemp(prefix=f"serve_load_{mode}_", suffix=".log")[1])
    print(f"[{mode}] {shlex.join(command)}  (log: {log})", flush=True)
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        wait_for_health(url, server, log, args.start_timeout)
        if warmup:
            asyncio.run(send_all(f"{url}/v1/translate", warmup, args.clients, args.timeout))
        before = batch_stats(url)
        load_before = os.getloadavg()
        cpu = {"server": -cpu_seconds(server.pid), "clients": -cpu_seconds()}
        started = time.perf_counter()
        answers = asyncio.run(send_all(f"{url}/v1/translate", planned, args.clients, args.timeout))
        wall = time.perf_counter() - started
        cpu = {
            "server": round(cpu["server"] + cpu_seconds(server.pid), 2),
            "clients": round(cpu["clients"] + cpu_seconds(), 2),
        }
        after = batch_stats(url)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            exit_status = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            exit_status = None
    batches = {
        "batches": int(after["count"] - before["count"]),
        "sentences": int(after["sum"] - before["sum"]),
    }
    if exit_status != 0:
        print(f"[{mode}] the server exited with {exit_status}:\n{tail(log)}", file=sys.stderr)
    else:
        log.unlink()
    return RunResult(mode, command, wall, answers, exit_status, batches, load_before, cpu)


# -- the report --------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(result: RunResult, checked: dict, args) -> dict:
    counts = checked["counts"]
    latencies = checked["latencies"]
    sentences = counts["ok"] + counts["batch_noise"]
    batches = result.batches
    return {
        "mode": result.mode,
        "server_command": shlex.join(result.server_command),
        "requests": len(result.answers),
        "clients": args.clients,
        "hostile_share": args.hostile,
        **counts,
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "wall_s": round(result.wall_s, 2),
        "sentences_per_s": round(sentences / result.wall_s, 1),
        "requests_per_s": round(len(result.answers) / result.wall_s, 1),
        "batches": batches["batches"],
        "mean_batch": round(batches["sentences"] / max(batches["batches"], 1), 2),
        "server_exit_status": result.exit_status,
        "cpu_s": result.cpu_s,
        "load_average_before": [round(x, 2) for x in result.load_before],
        "problems": checked["problems"][:20],
    }


def table(rows: list[dict]) -> str:
    columns = [
        ("batching", lambda r: "on" if r["mode"] == "batching" else "off"),
        ("requests", lambda r: r["requests"]),
        ("clients", lambda r: r["clients"]),
        ("hostile", lambda r: f"{r['hostile_share']:.0%}"),
        ("4xx", lambda r: r["4xx"]),
        ("5xx", lambda r: r["5xx"]),
        ("lost/mismatched", lambda r: f"{r['lost']}/{r['mismatched']}"),
        ("noise", lambda r: r["batch_noise"]),
        ("p50 ms", lambda r: r["p50_ms"]),
        ("p99 ms", lambda r: r["p99_ms"]),
        ("sentences/s", lambda r: r["sentences_per_s"]),
        ("mean batch", lambda r: r["mean_batch"]),
        ("exit", lambda r: r["server_exit_status"]),
    ]
    cells = [[name for name, _ in columns]] + [[str(get(r)) for _, get in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="model folder, run folder or checkpoint")
    parser.add_argument("--name", default="en-de", help="the name it is served under")
    parser.add_argument("--requests", type=int, default=2000, help="requests per mode")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--hostile", type=float, default=0.1, help="share of bad requests")
    parser.add_argument(
        "--modes",
        default="batching,no-batching",
        help="comma-separated: batching, no-batching (default: both)",
    )
    parser.add_argument("--max-batch-size", type=int, help="passed to the server (batching)")
    parser.add_argument("--max-wait-ms", type=float, help="passed to the server (batching)")
    parser.add_argument("--warmup", type=int, default=64, help="unmeasured requests first")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=60.0, help="client timeout per request")
    parser.add_argument("--start-timeout", type=float, default=180.0, help="wait for /health")
    parser.add_argument("--seed", type=int, default=0, help="where the bad requests go")
    parser.add_argument(
        "--data", type=Path, default=DATA / TEST_FILE, help="source sentences (gzip or text)"
    )
    parser.add_argument(
        "--sentences", type=int, help="use only the first N sentences (default: all)"
    )
    parser.add_argument("-o", "--output", type=Path, help="write the results as JSON")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"batching", "no-batching"}:
        parser.error(f"--modes takes batching and/or no-batching, got {args.modes!r}")
    args.modes = modes
    return args


def read_sentences(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return [line.strip() for line in lines if line.strip()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from seq2seq.hardware import cpu_description
    from seq2seq.serving.settings import Limits

    sentences = read_sentences(args.data)[: args.sentences]
    print(f"{len(sentences)} sentences from {args.data}", flush=True)
    print("expected translations (in-process, greedy) ...", flush=True)
    expected = expected_translations(args.model, sentences)
    print(
        f"  alone: {expected['alone_s']:.1f} s; in batches of 64: {expected['batched_s']:.1f} s; "
        f"{len(expected['differ'])} sentences translate differently in a batch",
        flush=True,
    )
    limits = Limits()  # the server's defaults
    hostile = hostile_requests(args.name, limits.max_texts, limits.max_chars, limits.max_body_bytes)
    planned = plan(args.requests, args.hostile, sentences, hostile, args.seed)
    warmup = [
        Planned("valid", json.dumps({"texts": [s]}).encode(), 200, sentence=i)
        for i, s in enumerate(sentences[: args.warmup])
    ]
    rows = []
    for mode in args.modes:
        result = run_mode(args, mode, planned, warmup)
        rows.append(summary(result, check(planned, result.answers, expected), args))
        print(table(rows[-1:]), flush=True)

    print()
    print(table(rows))
    ratio = None
    speed = {row["mode"]: row["sentences_per_s"] for row in rows}
    if len(speed) == 2 and speed["no-batching"]:
        ratio = round(speed["batching"] / speed["no-batching"], 2)
        print(f"throughput with batching / without: {ratio}x")
    failed = [
        row["mode"]
        for row in rows
        if row["5xx"]
        or row["lost"]
        or row["mismatched"]
        or row["hostile_wrong"]
        or row["server_exit_status"] != 0
    ]
    for row in rows:
        for problem in row["problems"]:
            print(f"  [{row['mode']}] {problem}")
    report = {
        "cpu": cpu_description(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": expected["torch_threads"],
        "python": platform.python_version(),
        "command": shlex.join([sys.executable, *sys.argv]),
        "settings": {
            "model": args.model,
            "requests": args.requests,
            "clients": args.clients,
            "hostile_share": args.hostile,
            "hostile_kinds": [h.kind for h in hostile],
            "warmup": args.warmup,
            "max_batch_size": args.max_batch_size,
            "max_wait_ms": args.max_wait_ms,
            "data": str(args.data),
            "sentences": len(sentences),
            "seed": args.seed,
        },
        "expected": {
            "sentences": len(sentences),
            "differ_alone_vs_batched": expected["differ"],
            "alone_s": round(expected["alone_s"], 2),
            "batched_s": round(expected["batched_s"], 2),
        },
        "runs": rows,
        "throughput_ratio": ratio,
        "failed": failed,
    }
    if args.output:
        args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.output}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
