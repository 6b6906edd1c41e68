"""The speed benchmark runs end to end on a tiny recipe and reports what the README quotes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _models import PINNED_TINY_MODEL


def test_bench_reports_fast_and_plain_and_skips_fp16_off_gpu(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [
        *(sys.executable, "-m", "seq2seq.bench", "+exp=en_de_fixed"),
        *PINNED_TINY_MODEL,
        *("data.train_subset=2000", "tokenizer.vocab_size=300", "trainer.threads=1"),
        *("--steps", "3", "--warmup", "1", "--sentences", "20", "--plain"),
        *("--precision", "fp32", "--precision", "fp16", "-o", str(out)),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEQ2SEQ_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fp16 skipped: fp16 needs a CUDA GPU" in done.stdout
    report = json.loads(out.read_text())
    assert report["machine"]["fp32_matmul_gflops"] > 0
    assert [r["variant"] for r in report["runs"]] == ["fast", "plain"]
    for run in report["runs"]:
        assert run["device"] == "cpu"
        assert run["training"]["tgt_tokens_per_s"] > 0
        assert run["translation"]["greedy"]["sentences"] == 20
    assert report["ratios"]["fast-fp32 vs plain-fp32: training"] > 0
    assert "| fast | fp32 |" in done.stdout


def test_fast_and_plain_outputs_are_compared_on_every_sentence():
    from seq2seq.commands.bench import _equal_outputs, outputs_digest

    outputs = [[5, 6, 7]] * 1000

    def run(variant, sentences):
        digest = outputs_digest(sentences)
        return {
            "variant": variant,
            "precision": "fp32",
            "translation": {"greedy": {"outputs_sha256": digest}},
        }

    differs_late = [*outputs[:900], [5, 6], *outputs[901:]]
    assert _equal_outputs([run("fast", outputs), run("plain", list(outputs))]) is True
    assert _equal_outputs([run("fast", outputs), run("plain", differs_late)]) is False
    assert outputs_digest([[1, 23]]) != outputs_digest([[12, 3]])
    assert _equal_outputs([run("fast", outputs)]) is None
