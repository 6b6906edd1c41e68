"""The training recipe: LR warm-up, gradient accumulation, fused Adam, best.pt selection
and early stopping, scheduled sampling in the trainer, and exact resume with all of them."""

import copy
import json

import pytest
import torch
from _models import make_config, train_tiny
from hydra.errors import ConfigCompositionException

from seq2seq.checkpoint import load_checkpoint
from seq2seq.data.batching import make_batch
from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.nn.output_loss import token_loss
from seq2seq.training.optimizer import load_optimizer_state, make_adam
from seq2seq.training.schedule import warmup_factor
from seq2seq.training.trainer import Trainer
from seq2seq.training.update import accumulate_gradients


def records(run_dir):
    with open(run_dir / "metrics.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def train_records(run_dir):
    return {r["step"]: r for r in records(run_dir) if "train_loss" in r}


def model_weights(path):
    return load_checkpoint(path)["model"]


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def scripted_evals(monkeypatch):
    """Replace dev evaluation by a script of scores: returns the list to fill and the
    steps at which evaluations happened."""
    script, steps = [], []

    def evaluate(self):
        steps.append(self.progress.step)
        score = script[len(steps) - 1]
        return {"dev_loss": score, "dev_ppl": 1.0, "dev_bleu": score}

    monkeypatch.setattr(Trainer, "evaluate", evaluate)
    return script, steps


def tiny_model(dropout=0.0):
    torch.manual_seed(0)
    spec = ModelSpec(
        src_vocab_size=23,
        tgt_vocab_size=29,
        embedding_size=8,
        hidden_size=16,
        bidirectional=True,
        encoder_hidden_size=8,
        dropout=dropout,
    )
    return Seq2Seq(spec)


# ------------------------------------------------------------------ warm-up


def test_warmup_factor():
    assert [warmup_factor(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0


def test_warmup_is_linear_and_plateau_decay_starts_after_it(tmp_path, scripted_evals):
    script, steps = scripted_evals
    script.extend([1.0] * 10)  # never improves: the plateau would cut the LR at every eval
    run = train_tiny(
        tmp_path / "run",
        [
            "trainer.warmup_steps=4",
            "trainer.max_steps=8",
            "trainer.eval_every=2",
            "trainer.lr_patience=0",
            "trainer.lr=0.001",
        ],
    )
    lrs = [train_records(run)[s]["lr"] for s in range(1, 9)]
    # Evaluations at 2 and 4 fall in the warm-up and are ignored by the plateau scheduler;
    # at 4 (warm-up done) it records the score, at 6 and 8 it halves the LR.
    expected = [0.00025, 0.0005, 0.00075, 0.001, 0.001, 0.001, 0.0005, 0.0005]
    assert lrs == pytest.approx(expected, rel=1e-12)
    assert steps == [2, 4, 6, 8]
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.00025)


def test_linear_anneal_reaches_zero_at_the_budget_and_ignores_the_plateau(tmp_path, scripted_evals):
    script, _ = scripted_evals
    script.extend([1.0] * 10)  # never improves: the plateau scheduler would halve the LR
    run = train_tiny(
        tmp_path / "run",
        [
            "trainer.anneal=linear",
            "trainer.warmup_steps=2",
            "trainer.max_steps=8",
            "trainer.eval_every=2",
            "trainer.lr_patience=0",
            "trainer.lr=0.001",
        ],
    )
    lrs = [train_records(run)[s]["lr"] for s in range(1, 9)]
    expected = [0.001 * min(1, (i + 1) / 2) * (1 - i / 8) for i in range(8)]
    assert lrs == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------ accumulation


def test_accumulating_two_batches_gives_the_gradient_of_their_union():
    model = tiny_model()
    x_src, x_tgt = [[5, 6, 7], [8, 9]], [[10, 11, 12, 13], [14]]
    y_src, y_tgt = [[15, 16, 17, 18, 19, 20]], [[21, 22, 23, 24, 25, 26, 27]]
    x, y = make_batch(x_src, x_tgt), make_batch(y_src, y_tgt)
    union = make_batch(x_src + y_src, x_tgt + y_tgt)

    def loss_of(batch):
        return token_loss(model(batch.src, batch.src_lengths, batch.tgt_in), batch.tgt_out, 0.1)

    def gradients(batches):
        model.zero_grad(set_to_none=True)
        loss = accumulate_gradients(batches, loss_of)
        return loss, {n: p.grad.clone() for n, p in model.named_parameters()}

    loss_accumulated, accumulated = gradients([x, y])
    loss_union, one_update = gradients([union])
    assert loss_accumulated == pytest.approx(loss_union, rel=1e-6)
    for name, grad in one_update.items():
        torch.testing.assert_close(accumulated[name], grad, atol=1e-7, rtol=1e-5, msg=name)
    # …and not the mean of the two batches' per-token losses (what naive accumulation gives)
    _, only_y = gradients([y])
    assert not torch.allclose(only_y["output_layer.bias"], one_update["output_layer.bias"])


def test_non_finite_loss_reports_none():
    model = tiny_model()
    batch = make_batch([[5, 6]], [[7, 8]])
    nan = accumulate_gradients([batch, batch], lambda b: torch.tensor(float("nan")))
    assert nan is None
    logits = model(batch.src, batch.src_lengths, batch.tgt_in)
    assert accumulate_gradients([batch], lambda b: token_loss(logits, b.tgt_out)) > 0


# ------------------------------------------------------------------ fused Adam


def adam_run(fused, steps=5, start=None, first_step=0):
    model = tiny_model()
    optimizer = make_adam(model.parameters(), 1e-2, fused=fused)
    if start is not None:
        model.load_state_dict(start[0])
        load_optimizer_state(optimizer, start[1])
    for step in range(first_step, first_step + steps):
        gen = torch.Generator().manual_seed(step)  # the gradients of update `step`
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=gen)
        optimizer.step()
    return model, optimizer


def test_fused_adam_is_used_on_cpu_and_matches_the_default():
    fused_model, fused_opt = adam_run(fused=True)
    plain_model, plain_opt = adam_run(fused=False)
    assert fused_opt.param_groups[0]["fused"] is True
    assert not plain_opt.param_groups[0]["fused"]
    for (name, a), b in zip(fused_model.named_parameters(), plain_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6, msg=name)


@pytest.mark.parametrize("saved_fused", [True, False])
def test_optimizer_state_saves_and_restores_across_fused_settings(saved_fused):
    model, optimizer = adam_run(fused=saved_fused, steps=3)
    saved = (copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict()))
    # continuing from the saved state under the fused kernel …
    resumed, resumed_opt = adam_run(fused=True, steps=2, start=saved, first_step=3)
    assert resumed_opt.param_groups[0]["fused"] is True
    state = next(iter(resumed_opt.state.values()))
    assert state["step"].item() == 5
    # … matches an uninterrupted run (exactly, when the kernel is the same)
    reference, _ = adam_run(fused=saved_fused, steps=5)
    for a, b in zip(resumed.parameters(), reference.parameters(), strict=True):
        if saved_fused:
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


# ------------------------------------------------------------------ best.pt and early stopping


@pytest.mark.parametrize(
    "metric,scores",
    [("bleu", [1.0, 5.0, 3.0, 2.0, 4.0]), ("loss", [3.0, 1.0, 2.0, 2.5, 1.5])],
)
def test_best_checkpoint_holds_the_best_evaluation_and_patience_stops(
    tmp_path, scripted_evals, metric, scores
):
    script, steps = scripted_evals
    script.extend(scores)
    run = train_tiny(
        tmp_path / "run",
        [
            f"trainer.early_stopping_metric={metric}",
            "trainer.patience=2",
            "trainer.max_steps=20",
            "trainer.eval_every=2",
            "trainer.checkpoint_every=2",
            "trainer.keep_last=10",
        ],
    )
    ckpt = run / "checkpoints"
    # Evaluations at 2, 4, 6, 8: the best is at step 4; two evaluations without
    # improvement (6, 8) stop the run, so the fifth (and better) score is never seen.
    assert steps == [2, 4, 6, 8]
    best = load_checkpoint(ckpt / "best.pt")
    assert best["progress"]["step"] == 4 and best["progress"]["best_score"] == scores[1]
    assert same_weights(best["model"], model_weights(ckpt / "step_4.pt"))
    assert not same_weights(best["model"], model_weights(ckpt / "last.pt"))
    last = load_checkpoint(ckpt / "last.pt")
    assert last["progress"]["step"] == 8 and last["progress"]["evals_without_improvement"] == 2
    assert not (ckpt / "step_10.pt").exists()
    assert [r["best"] for r in records(run) if "dev_loss" in r] == [scores[0]] + [scores[1]] * 3


# ------------------------------------------------------------------ exact resume, everything on

RECIPE = [
    "trainer.accumulate=2",
    "trainer.warmup_steps=3",
    "trainer.scheduled_sampling.schedule=linear",
    "trainer.scheduled_sampling.k=10",
    "trainer.scheduled_sampling.min_teacher=0.4",
    "trainer.max_steps=12",
    "trainer.eval_every=0",
    "trainer.checkpoint_every=1000",
]


def test_resume_is_exact_with_accumulation_warmup_and_scheduled_sampling(tmp_path):
    full = train_tiny(tmp_path / "full", RECIPE)
    stopped = train_tiny(tmp_path / "stopped", [*RECIPE, "trainer.max_steps=5"])
    resumed = train_tiny(tmp_path / "resumed", [*RECIPE, f"trainer.resume={stopped}"])
    reference, first, second = (train_records(r) for r in (full, stopped, resumed))
    assert sorted(first) == [1, 2, 3, 4, 5] and sorted(second) == list(range(6, 13))
    for part in (first, second):
        for step, record in part.items():
            assert record["train_loss"] == reference[step]["train_loss"], step
            assert record["lr"] == reference[step]["lr"]
    # steps count updates: 5 updates of 2 batches each
    progress = load_checkpoint(stopped / "checkpoints" / "last.pt")["progress"]
    assert progress["step"] == 5 and progress["batch_in_epoch"] == 10
    # the teacher-forcing probability follows the schedule (logged per update)
    assert [reference[s]["teacher_forcing"] for s in (1, 5, 12)] == pytest.approx([1.0, 0.6, 0.4])
    assert same_weights(
        model_weights(full / "checkpoints" / "last.pt"),
        model_weights(resumed / "checkpoints" / "last.pt"),
    )


# ------------------------------------------------------------------ configuration


def test_defaults_and_unknown_keys():
    t = make_config([]).trainer
    assert t.warmup_steps == 0 and t.accumulate == 1 and t.fused_optimizer is True
    assert t.scheduled_sampling.schedule == "none"
    for bad in ("trainer.warmup_step=3", "trainer.scheduled_sampling.kk=3"):
        with pytest.raises(ConfigCompositionException):
            make_config([bad])


@pytest.mark.parametrize(
    "override,message",
    [
        ("trainer.accumulate=0", "trainer.accumulate"),
        ("trainer.warmup_steps=-1", "trainer.warmup_steps"),
        ("trainer.scheduled_sampling.schedule=cosine", "trainer.scheduled_sampling.schedule"),
    ],
)
def test_bad_recipe_values_fail_before_any_work(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        Trainer(make_config([override]), tmp_path).setup()
