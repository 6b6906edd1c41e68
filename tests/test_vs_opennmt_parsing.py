"""benchmarks/vs_opennmt.py reads speeds and times from the two toolkits' logs and turns
them into a table: these are the pure parts, on literal log excerpts (OpenNMT-py 3.5.1's
report lines, seq2seq's metrics.jsonl records and log lines)."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
report = importlib.import_module("vs_opennmt_report")

ONMT_LOG = """\
[2026-11-26 05:38:40,101 INFO] Loading vocab from text file...
[2026-11-26 05:38:49,509 INFO] Starting training on CPU, could be very slow
[2026-11-26 05:38:49,512 INFO] Start training loop and validate every 300 steps...
[2026-11-26 05:39:31,023 INFO] Step 50/  300; acc: 12.1; ppl: 512.3; xent: 6.2; lr: 0.00100; \
sents:    3200; bsz:  859/ 952/64; 1016/1126 tok/s;     42 sec;
[2026-11-26 05:39:53,798 INFO] Step 100/  300; acc: 30.2; ppl:  87.3; xent: 4.5; lr: 0.00100; \
sents:    3200; bsz:  921/1011/64; 2057/2257 tok/s;     64 sec;
[2026-11-26 05:40:15,642 INFO] Step 150/  300; acc: 37.3; ppl:  46.9; xent: 3.8; lr: 0.00100; \
sents:    3200; bsz:  876/ 955/64; 2044/2230 tok/s;     86 sec;
[2026-11-26 05:40:16,000 INFO] Saving checkpoint /w/onmt/run/model_step_150.pt
"""

OUR_METRICS = [
    '{"step": 50, "epoch": 0, "train_loss": 6.05, "tgt_tokens_per_s": 1200.5, "lr": 0.001}',
    '{"step": 100, "epoch": 0, "train_loss": 5.01, "tgt_tokens_per_s": 2600.0, "lr": 0.001}',
    "",
    '{"step": 150, "epoch": 0, "train_loss": 4.60, "tgt_tokens_per_s": 2800.0, "lr": 0.001}',
    '{"step": 150, "epoch": 0, "dev_loss": 4.2, "dev_bleu": 3.1, "best": 3.1, "wall_s": 80.0}',
]


def test_onmt_speeds_take_the_target_number_of_src_tgt_toks():
    speeds = report.onmt_speeds(ONMT_LOG.splitlines())
    # not the source number (1016) and not the batch-size triple (859/952/64)
    assert speeds == {50: 1126.0, 100: 2257.0, 150: 2230.0}


def test_our_speeds_skip_evaluation_records_and_blank_lines():
    assert report.our_speeds(OUR_METRICS) == {50: 1200.5, 100: 2600.0, 150: 2800.0}


def test_the_warm_up_interval_is_left_out_of_the_median():
    speeds = {50: 100.0, 100: 2600.0, 150: 2800.0, 200: 2700.0}
    assert report.steady_median(speeds) == 2700.0
    assert report.steady_median({50: 100.0}) is None


def stamped(text: str) -> list[tuple[float, str]]:
    return [(float(i), line) for i, line in enumerate(text.splitlines())]


def test_the_onmt_loop_starts_at_its_last_announcement_and_ends_at_the_last_update():
    window = report.loop_window(stamped(ONMT_LOG), report.ONMT_LOOP, re.compile(r"Step\s+150\b"))
    assert window == (2.0, 5.0)  # "Start training loop", then "Step 150/  300"


def test_our_loop_markers():
    lines = stamped(
        "[2026-12-01 02:02:01,000][seq2seq.data][INFO] - tokenizer trained\n"
        "[2026-12-01 02:02:28,775][seq2seq.training.trainer][INFO] - 454 batches per epoch "
        "(454 updates), padding 3.5%\n"
        "train: step 300/300 (100%) loss=4.1 tok/s=2650\n"
        "[2026-12-01 02:04:06,060][seq2seq.training.trainer][INFO] - stopping: reached "
        "trainer.max_steps=300\n"
    )
    assert report.loop_window(lines, report.OUR_LOOP, report.OUR_END) == (1.0, 3.0)


def test_a_missing_marker_gives_no_window():
    lines = stamped(ONMT_LOG)
    assert report.loop_window(lines, report.ONMT_LOOP, re.compile(r"Step\s+300\b")) is None
    late_start = [(0.0, "Step 150/  300; 1/2 tok/s"), (1.0, "Start training loop")]
    assert report.loop_window(late_start, report.ONMT_LOOP, re.compile(r"Step\s+150\b")) is None


@pytest.mark.parametrize(
    "ours, theirs, better, expected",
    [
        (3000.0, 1500.0, "higher", 2.0),  # twice the tok/s: seq2seq 2x faster
        (10.0, 25.0, "lower", 2.5),  # seconds: theirs / ours
        (25.0, 10.0, "lower", 0.4),  # seq2seq slower: below 1
        (31.5, 30.0, "bleu", 1.5),  # BLEU: a difference in points
        (5.0, None, "lower", None),
        (5.0, 7.0, None, None),  # teardown: no ratio
        (0.0, 7.0, "lower", None),
    ],
)
def test_advantage_is_above_one_when_seq2seq_is_better(ours, theirs, better, expected):
    assert report.advantage(ours, theirs, better) == expected


def test_the_table_labels_and_directions():
    ours = {"train_tgt_tok_s": 2600.0, "train_total_s": 60.0, "greedy_bleu": 12.25}
    theirs = {"train_tgt_tok_s": 2230.0, "train_total_s": 90.0, "greedy_bleu": 11.0}
    rows = {
        line.split(" | ")[0].lstrip("| "): line
        for line in report.format_table(ours, theirs).splitlines()
    }
    assert "advantage of seq2seq (>1: faster/smaller)" in rows["measure"]
    assert rows["train: target tok/s (median after warm-up)"].endswith("| 2,600 | 2,230 | 1.17× |")
    assert rows["train: wall clock with start-up, s"].endswith("| 60.00 | 90.00 | 1.50× |")
    assert rows["greedy: BLEU"].endswith("| 12.25 | 11.00 | +1.25 BLEU |")
    assert rows["beam5: BLEU"].endswith("| — | — | — |")  # not measured
    # OpenNMT-py has no shortlist: seq2seq's --shortlist run is set against its plain one
    ours["greedy_shortlist_bleu"] = 12.5
    shortlisted = report.format_table(ours, theirs).splitlines()
    assert "| greedy: BLEU, seq2seq --shortlist | 12.50 | 11.00 | +1.50 BLEU |" in shortlisted
