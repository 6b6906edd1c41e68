"""The character language model: "hello", real text, clipping, checkpoints and seq2seq-sample."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _models import make_config

from seq2seq.checkpoint import load_checkpoint
from seq2seq.commands.diagnose import clipping_report
from seq2seq.commands.sample import sample_text
from seq2seq.commands.train import train
from seq2seq.lm.model import load_lm, target_probabilities
from seq2seq.lm.trainer import LMTrainer


def records(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# ------------------------------------------------------------------- hello
@pytest.fixture(scope="module")
def hello_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("hello")
    train(make_config([], exp="hello"), run_dir)
    return run_dir


def test_hello_assigns_at_least_0_9_to_each_target(hello_run):
    model, vocab, payload = load_lm(hello_run / "checkpoints" / "best.pt")
    assert vocab.chars == ["h", "e", "l", "o"]  # one-hot over exactly {h, e, l, o}
    assert model.embedding is None and model.rnn.layers[0][0].rnn.input_size == 4
    probs = target_probabilities(model, vocab, "hello")
    targets = vocab.encode("ello")
    assert probs.shape == (4, 4)
    for t, target in enumerate(targets):
        assert probs[t, target] >= 0.9, f"step {t + 1}: p({vocab.chars[target]}) = {probs[t]}"
    assert payload["config"]["task"] == "lm"


def test_hello_prints_the_confidence_table(hello_run):
    table = (hello_run / "confidence.txt").read_text(encoding="utf-8")
    before, after = table.split("confidence per time step (after")
    assert "before training" in before
    lines = after.splitlines()
    assert any(line.split()[:5] == ["input", "h", "e", "l", "l"] for line in lines)
    assert any(line.split()[:5] == ["target", "e", "l", "l", "o"] for line in lines)
    row = {line.split()[0]: line.split()[1:] for line in lines if line.strip().startswith("P(")}
    assert set(row) == {"P(h)", "P(e)", "P(l)", "P(o)"}
    # the starred (target) entries: e, l, l, o
    assert [c.endswith("*") for c in row["P(e)"]] == [True, False, False, False]
    assert [c.endswith("*") for c in row["P(o)"]] == [False, False, False, True]


# --------------------------------------------------------------- real text
@pytest.fixture(scope="module")
def char_lm_run(tmp_path_factory, data_root) -> Path:
    run_dir = tmp_path_factory.mktemp("char_lm")
    overrides = [
        "data.max_lines=2000",
        "model.embedding_size=16",
        "model.hidden_size=64",
        "trainer.batch_size=16",
        "trainer.tbptt.k1=40",
        "trainer.tbptt.k2=40",
        "trainer.max_steps=40",
        "trainer.eval_every=10",
        "trainer.log_every=1",  # one record per update: its gradient norm and clipping
        "trainer.checkpoint_every=20",
        "trainer.clip_norm=1.0",
    ]
    summary = train(make_config(overrides, exp="char_lm"), run_dir)
    assert summary["step"] == 40
    return run_dir


def test_char_lm_on_real_text_lowers_heldout_bits_per_character(char_lm_run):
    evals = [r["valid_bpc"] for r in records(char_lm_run) if "valid_chars" in r]
    assert len(evals) == 4
    assert evals[-1] < evals[0] - 0.3
    train_bpc = [r["train_bpc"] for r in records(char_lm_run) if "train_bpc" in r]
    assert train_bpc[-1] < train_bpc[0]
    assert 1.0 < evals[-1] < 6.0  # in bits: below log2(vocabulary) after training


def test_char_lm_checkpoints_are_self_contained(char_lm_run):
    for name in ("best.pt", "last.pt"):
        payload = load_checkpoint(char_lm_run / "checkpoints" / name)
        assert {"config", "vocab", "model", "lm_spec"} <= set(payload)
        assert payload["config"]["model"]["cell"] == "lstm"
    assert {"optimizer", "rng"} <= set(load_checkpoint(char_lm_run / "checkpoints" / "last.pt"))
    model, vocab, _ = load_lm(char_lm_run)  # a run directory → checkpoints/best.pt
    assert "\n" in vocab.chars and "T" in vocab.chars and len(vocab) == model.spec.vocab_size


def test_clipping_is_counted_and_reported(char_lm_run):
    report = clipping_report(char_lm_run)
    assert report["updates"] == 40 and report["clip_norm"] == 1.0
    updates = [r for r in records(char_lm_run) if "grad_norm" in r]
    assert [r["step"] for r in updates] == list(range(1, 41))
    for r in updates:  # clipped exactly when the norm before clipping exceeds clip_norm
        assert r["clip_events"] == int(r["grad_norm"] > 1.0), r
    assert report["clip_events"] == sum(r["clip_events"] for r in updates)
    assert report["clip_events"] == updates[-1]["clip_events_total"]
    end = [r for r in records(char_lm_run) if r.get("event") == "end"]
    assert end and end[0]["clip_events_total"] == report["clip_events"]


def test_clipping_bounds_the_global_gradient_norm(tmp_path):
    cfg = make_config(
        [
            "data.text='the cat sat on the mat. the dog sat on the log. '",
            "model.cell=elman",
            "model.init=gaussian",
            "model.init_std=1.0",
            "model.hidden_size=32",
            "trainer.batch_size=2",
            "trainer.tbptt.k1=8",
            "trainer.tbptt.k2=8",
            "trainer.clip_norm=0.5",
            "trainer.lr=0.05",
        ],
        exp="hello",
    )
    trainer = LMTrainer(cfg, tmp_path)
    trainer.setup()
    inputs, targets, windows = trainer._epoch_streams(0)
    state = trainer.model.initial_state(inputs.size(0))
    clipped = 0
    for window in windows:
        _, _, was_clipped, state = trainer.update(window, inputs, targets, state)
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        after = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        assert after <= 0.5 * (1 + 1e-5)
        assert was_clipped == (trainer.grad_norm > 0.5)
        clipped += was_clipped
    assert clipped > 0  # std-1 weights: the raw norms exceed the bound


def test_truncated_bptt_trainer_carries_the_state_across_updates(tmp_path):
    cfg = make_config(
        [
            "data.text='abcabcabcabcabcabcabcabcabcabcabcabcabcabcabc'",
            "trainer.tbptt.k1=5",
            "trainer.tbptt.k2=12",
            "trainer.max_epochs=2",
            "trainer.show_table=false",
        ],
        exp="hello",
    )
    summary = train(cfg, tmp_path)
    # 44 steps per epoch in updates of k1 = 5 characters: 9 updates an epoch
    assert summary["step"] == 18 and summary["updates"] == 18


def test_unknown_task_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="task"):
        train(make_config(["task=lmm"], exp="hello"), tmp_path)


# ----------------------------------------------------------------- sampling
def test_sample_text_starts_with_the_prime_and_has_the_requested_length(char_lm_run):
    model, vocab, _ = load_lm(char_lm_run)
    gen = torch.Generator().manual_seed(3)
    text = sample_text(model, vocab, "The ", 200, 0.8, gen)
    assert text.startswith("The ") and len(text) == 4 + 200
    assert "\ufffd" not in text[4:]
    again = sample_text(model, vocab, "The ", 200, 0.8, torch.Generator().manual_seed(3))
    assert again == text


def test_seq2seq_sample_console_script(char_lm_run):
    beside = Path(sys.executable).with_name("seq2seq-sample")
    script = str(beside) if beside.exists() else shutil.which("seq2seq-sample")
    assert script, "console script seq2seq-sample is not installed (pip install -e .)"
    proc = subprocess.run(
        [
            script,
            "--checkpoint",
            str(char_lm_run / "checkpoints" / "best.pt"),
            "--prime",
            "The ",
            "--length",
            "200",
            "--temperature",
            "0.8",
            "--seed",
            "1",
        ],
        capture_output=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode("utf-8")
    assert out.endswith("\n")
    assert out.startswith("The ") and len(out[:-1]) == 4 + 200


def test_seq2seq_sample_rejects_a_translation_checkpoint(tmp_path):
    from seq2seq.checkpoint import save_checkpoint
    from seq2seq.commands.sample import main

    save_checkpoint(tmp_path / "x.pt", {"model": {}})
    assert main(["--checkpoint", str(tmp_path / "x.pt")]) == 2


def test_resume_continues_exactly(tmp_path):
    text = "data.text='a man rides a bike. a dog runs on the beach. two men play ball. '"
    common = [
        text,
        "model.cell=gru",
        "model.embedding_size=8",
        "model.hidden_size=16",
        "model.dropout=0.1",
        "trainer.batch_size=2",
        "trainer.tbptt.k1=4",
        "trainer.tbptt.k2=7",
        "trainer.log_every=1",
        "trainer.eval_every=0",
        "trainer.show_table=false",
        "trainer.max_epochs=100",
    ]

    for name in ("whole", "first", "rest"):
        (tmp_path / name).mkdir()

    def bpc(run_dir):
        return {r["step"]: r["train_bpc"] for r in records(run_dir) if "train_bpc" in r}

    train(make_config([*common, "trainer.max_steps=30"], exp="hello"), tmp_path / "whole")
    train(make_config([*common, "trainer.max_steps=13"], exp="hello"), tmp_path / "first")
    resume = f"trainer.resume={tmp_path / 'first'}"
    train(make_config([*common, "trainer.max_steps=30", resume], exp="hello"), tmp_path / "rest")
    whole, rest = bpc(tmp_path / "whole"), bpc(tmp_path / "rest")
    assert sorted(rest) == list(range(14, 31))
    assert all(rest[s] == whole[s] for s in rest)


def test_a_language_model_given_to_translate_is_one_clear_line(hello_run, capsys):
    from seq2seq.commands.translate import main as translate_main

    with pytest.raises(SystemExit) as done:
        translate_main(["--checkpoint", str(hello_run), "-i", str(hello_run / "config.yaml")])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "Traceback" not in err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "holds a character language model (task: lm), not a translation model" in err
    assert "seq2seq-sample" in err
