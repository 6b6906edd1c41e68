"""Watching a run: TensorBoard event files (read back with TensorBoard's own reader), an
optional wandb run, dev/step_N.hyp, `seq2seq-results --plot`, and the progress display
(in minutes for a time budget, plain lines off a terminal)."""

from __future__ import annotations

import importlib.machinery
import io
import json
import sys
import types
from pathlib import Path

import matplotlib.image
import pytest
import sacrebleu
from _models import PINNED_TINY_MODEL, make_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seq2seq.commands.results import main as results_main
from seq2seq.commands.train import USER_ERRORS, train
from seq2seq.data.pipeline import load_splits
from seq2seq.training.progress import Meter, PlainLines, ProgressBar, progress_bar

EVAL_SENTENCES = 12
SMALL = [
    "data.train_subset=300",
    "data.dev_subset=20",
    "tokenizer.vocab_size=200",
    *PINNED_TINY_MODEL,
    "trainer.max_steps=8",
    "trainer.eval_every=4",
    "trainer.log_every=2",
    "trainer.checkpoint_every=0",
    f"trainer.eval_sentences={EVAL_SENTENCES}",
    "trainer.batch_tokens=600",
    "trainer.threads=1",
]
TRAIN_TAGS = ["train/loss", "train/lr", "train/tgt_tokens_per_s", "train/grad_norm"]
DEV_TAGS = ["dev/loss", "dev/ppl", "dev/bleu", "dev/chrf"]


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir / "tensorboard"))
    accumulator.Reload()
    return accumulator


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """8 updates on real Multi30k pairs, validated at steps 4 and 8."""
    run_dir = tmp_path_factory.mktemp("monitored")
    train(make_config(SMALL), run_dir)
    return run_dir


# ------------------------------------------------------------------ TensorBoard
def test_tensorboard_has_the_training_and_dev_scalars(run):
    acc = events(run)
    scalars = acc.Tags()["scalars"]
    for tag in [*TRAIN_TAGS, "train/clip_events"]:
        assert [e.step for e in acc.Scalars(tag)] == [2, 4, 6, 8], tag
    for tag in DEV_TAGS:
        assert [e.step for e in acc.Scalars(tag)] == [4, 8], tag
    assert not [t for t in scalars if t.startswith("averaged/")]
    logged = {r["step"]: r for r in records(run) if "dev_bleu" in r}
    for event in acc.Scalars("dev/bleu"):
        assert event.value == pytest.approx(logged[event.step]["dev_bleu"], rel=1e-6)
    for event in acc.Scalars("train/grad_norm"):
        assert event.value > 0


def test_tensorboard_shows_dev_translations_as_text(run):
    acc = events(run)
    tag = "dev/translations/text_summary"
    assert tag in acc.Tags()["tensors"]
    texts = acc.Tensors(tag)
    assert [t.step for t in texts] == [4, 8]
    text = texts[-1].tensor_proto.string_val[0].decode("utf-8")
    lines = text.splitlines()
    assert lines[0] == "| source | reference | hypothesis |"
    assert len(lines) == 2 + 5  # header, rule, five sentences
    dev = load_splits(make_config(SMALL).data)["dev"]
    assert dev.src[0].replace("|", "\\|") in lines[2]
    hyps = (run / "dev" / "step_8.hyp").read_text(encoding="utf-8").splitlines()
    assert lines[2].endswith(f"| {hyps[0]} |")


# ------------------------------------------------------------ dev hypotheses
def test_each_validation_writes_all_its_dev_translations(run):
    dev = load_splits(make_config(SMALL).data)["dev"]
    refs = dev.tgt[:EVAL_SENTENCES]
    evals = [r for r in records(run) if "dev_bleu" in r]
    assert sorted(p.name for p in (run / "dev").iterdir()) == ["step_4.hyp", "step_8.hyp"]
    for record in evals:
        hyps = (run / "dev" / f"step_{record['step']}.hyp").read_text(encoding="utf-8")
        lines = hyps.split("\n")
        assert lines[-1] == "" and len(lines[:-1]) == EVAL_SENTENCES
        bleu = sacrebleu.corpus_bleu(lines[:-1], [refs]).score
        chrf = sacrebleu.corpus_chrf(lines[:-1], [refs]).score
        assert bleu == pytest.approx(record["dev_bleu"], abs=1e-9)
        assert chrf == pytest.approx(record["dev_chrf"], abs=1e-9)


def test_evaluation_records_carry_the_training_time(run):
    evals = [r for r in records(run) if "dev_bleu" in r]
    walls = [r["wall_s"] for r in evals]
    summary = json.loads((run / "summary.json").read_text())
    assert 0 < walls[0] < walls[1] <= summary["wall_s"]
    assert summary["best"]["dev_chrf"]["value"] == max(r["dev_chrf"] for r in evals)


# ------------------------------------------------------------------ LM
def test_the_char_lm_logs_bits_per_character(tmp_path):
    overrides = ["trainer.max_epochs=20", "trainer.eval_every=10", "trainer.log_every=5"]
    train(make_config([*overrides, "trainer.show_table=false"], exp="hello"), tmp_path)
    acc = events(tmp_path)
    for tag in ["train/bpc", "train/lr", "train/chars_per_s", "train/grad_norm"]:
        assert [e.step for e in acc.Scalars(tag)] == [5, 10, 15, 20], tag
    assert [e.step for e in acc.Scalars("valid/bpc")] == [10, 20]
    assert not (tmp_path / "dev").exists()


# ------------------------------------------------------------------ wandb
class FakeRun:
    def __init__(self):
        self.logged: list[tuple[int, dict]] = []
        self.finished = False

    def log(self, values, step):
        self.logged.append((step, values))

    def finish(self):
        self.finished = True


@pytest.fixture
def fake_wandb(monkeypatch):
    """A stand-in `wandb` module that keeps what it is given."""
    module = types.ModuleType("wandb")
    module.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    module.runs, module.init_kwargs = [], []

    def init(**kwargs):
        module.init_kwargs.append(kwargs)
        module.runs.append(FakeRun())
        return module.runs[-1]

    class Table:
        def __init__(self, columns, data):
            self.columns, self.data = columns, data

    module.init, module.Table = init, Table
    monkeypatch.setitem(sys.modules, "wandb", module)
    monkeypatch.setenv("WANDB_MODE", "offline")
    return module


def test_wandb_gets_the_same_scalars(tmp_path, fake_wandb):
    overrides = [*SMALL, "trainer.loggers=[wandb]", "trainer.wandb_project=mt-tests"]
    train(make_config(overrides), tmp_path)
    (kwargs,) = fake_wandb.init_kwargs
    assert kwargs["project"] == "mt-tests" and kwargs["dir"] == str(tmp_path)
    assert kwargs["mode"] == "offline" and kwargs["config"]["trainer"]["loggers"] == ["wandb"]
    (wandb_run,) = fake_wandb.runs
    assert wandb_run.finished
    bleu = {step: v["dev/bleu"] for step, v in wandb_run.logged if "dev/bleu" in v}
    assert bleu == {r["step"]: r["dev_bleu"] for r in records(tmp_path) if "dev_bleu" in r}
    losses = [step for step, v in wandb_run.logged if "train/loss" in v]
    assert losses == [2, 4, 6, 8]
    tables = [v["dev/translations"] for _, v in wandb_run.logged if "dev/translations" in v]
    assert len(tables) == 2 and len(tables[0].data) == 5
    assert not (tmp_path / "tensorboard").exists()


def test_wandb_not_installed_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(USER_ERRORS) as caught:
        train(make_config([*SMALL, "trainer.loggers=[tensorboard,wandb]"]), tmp_path)
    assert "pip install wandb" in str(caught.value)
    assert "trainer.loggers" in str(caught.value)
    assert not (tmp_path / "tokenizer").exists()  # refused before any data work


def test_an_unknown_logger_names_the_allowed_ones(tmp_path):
    with pytest.raises(USER_ERRORS, match="trainer.loggers must be a list of: tensorboard, wandb"):
        train(make_config([*SMALL, "trainer.loggers=[tensorbord]"]), tmp_path)


# ------------------------------------------------------------------ --plot
def test_results_plot_draws_a_png(run, tmp_path, capsys):
    out = tmp_path / "bleu.png"
    with pytest.raises(SystemExit) as exited:
        results_main([str(run), "--plot", str(out)])
    assert exited.value.code == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(out)
    assert image.shape[0] >= 300 and image.shape[1] >= 600
    assert image[..., :3].std() > 0.05  # drawn on, not a blank canvas
    assert "plot of 1 run(s)" in capsys.readouterr().err


def test_results_plot_without_dev_scores_is_an_error(tmp_path, capsys):
    run_dir = tmp_path / "lm"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("task: lm\n")
    (run_dir / "metrics.jsonl").write_text(json.dumps({"step": 5, "valid_bpc": 2.0}) + "\n")
    with pytest.raises(SystemExit) as exited:
        results_main([str(tmp_path), "--plot", str(tmp_path / "x.png")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "error: --plot: none of the runs has a dev BLEU" in err
    assert not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------ progress
def budget(max_time=None, max_steps=None, max_epochs=30):
    return types.SimpleNamespace(max_time=max_time, max_steps=max_steps, max_epochs=max_epochs)


def test_a_time_budget_is_shown_in_minutes():
    clock = {"s": 0.0}
    meter = Meter.of(budget(max_time=12), 454, lambda: clock["s"])
    assert (meter.unit, meter.total) == ("min", 12.0)
    bar = ProgressBar(meter, 0, "train", enabled=True)
    assert bar.bar.total == 12.0 and bar.bar.n == 0
    clock["s"] = 90.0
    bar.advance(40)
    assert bar.bar.n == pytest.approx(1.5)
    assert "1.5/12.0 min" in str(bar.bar) and "step=40" in str(bar.bar)
    clock["s"] = 800.0  # past the budget: the bar stays at its end
    bar.advance(400)
    assert bar.bar.n == pytest.approx(12.0)
    bar.close()


def test_a_step_budget_is_shown_in_updates():
    meter = Meter.of(budget(max_steps=200, max_time=12), 454, lambda: 0.0)
    assert (meter.unit, meter.total) == ("step", 200)
    assert Meter.of(budget(max_epochs=3), 100, lambda: 0.0).total == 300
    bar = ProgressBar(meter, 10, "train", enabled=True)
    bar.advance(11)
    assert (bar.bar.total, bar.bar.n) == (200, 11)
    bar.close()


def test_off_a_terminal_progress_is_plain_lines_every_30_seconds(monkeypatch):
    stream, now = io.StringIO(), {"t": 0.0}
    meter = Meter.of(budget(max_steps=400), None, lambda: 0.0)
    lines = PlainLines(meter, 0, "train", True, stream, clock=lambda: now["t"])
    for step in range(1, 130):
        now["t"] = step * 0.5  # two updates a second
        lines.advance(step)
        if step == 100:
            lines.set_postfix({"loss": "3.210"})
    assert stream.getvalue().splitlines() == [
        "train: step 60/400 (15%)",
        "train: step 120/400 (30%) loss=3.210",
    ]
    lines.close()
    assert stream.getvalue().splitlines()[-1] == "train: step 129/400 (32%) loss=3.210"
    assert "\r" not in stream.getvalue()

    minutes = Meter.of(budget(max_time=10), None, lambda: 150.0)
    assert PlainLines(minutes, 7, "train", True, stream).line() == (
        "train: 2.5/10.0 min (25%) step=7"
    )
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file, CI
    assert isinstance(progress_bar(budget(), 0, 10, "train", True, lambda: 0.0), PlainLines)
