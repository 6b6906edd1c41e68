"""The speed benchmark runs end to end on a tiny recipe and reports what the README quotes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _models import PINNED_TINY_MODEL

from seq2seq.commands.bench import main as bench_main


def test_bench_reports_fast_and_plain_and_skips_fp16_off_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, one_thread
) -> None:
    """`python -m seq2seq.bench`'s parent runs here (with one thread, as OMP_NUM_THREADS=1
    gives a subprocess); each variant still runs in a worker process of its own."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what the workers inherit
    monkeypatch.setenv("SEQ2SEQ_OFFLINE", "1")
    out = tmp_path / "bench.json"
    bench_main(
        [
            *("+exp=en_de_fixed", *PINNED_TINY_MODEL),
            *("data.train_subset=2000", "tokenizer.vocab_size=300", "trainer.threads=1"),
            *("--steps", "3", "--warmup", "1", "--sentences", "8", "--plain"),
            *("--precision", "fp32", "--precision", "fp16", "-o", str(out)),
        ]
    )
    printed = capsys.readouterr().out
    assert "fp16 skipped: fp16 needs a CUDA GPU" in printed
    report = json.loads(out.read_text())
    assert report["machine"]["fp32_matmul_gflops"] > 0
    assert [r["variant"] for r in report["runs"]] == ["fast", "plain"]
    for run in report["runs"]:
        assert run["device"] == "cpu"
        assert run["training"]["tgt_tokens_per_s"] > 0
        assert run["translation"]["greedy"]["sentences"] == 8
    fast, plain = (r["training"]["tgt_tokens_per_s"] for r in report["runs"])
    ratio = report["ratios"]["plain-fp32 speed / fast-fp32 speed: training"]
    assert ratio == pytest.approx(plain / fast)  # above 1 exactly when plain is faster
    assert "above 1: the first named is faster" in printed
    assert "| fast | fp32 |" in printed


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
