"""The NaN/Inf guard in the real training loop: a non-finite loss or gradient skips the
update with a warning, five in a row stop the run, and NaN weights are never saved."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from _models import PINNED_TINY_MODEL, TINY, make_config

from seq2seq.checkpoint import load_checkpoint
from seq2seq.training import scheduled_sampling
from seq2seq.training.run import MAX_BAD_STEPS, TrainingError
from seq2seq.training.trainer import Trainer

# Updates (1-based) whose loss or gradient is made non-finite: one alone, then five in a
# row, which must stop the run at update 10.
POISONED = {4, 6, 7, 8, 9, 10}


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_non_finite_updates_are_skipped_and_five_in_a_row_stop_the_run(
    tmp_path, monkeypatch, caplog, where
):
    cfg = make_config(
        [
            *TINY,
            *PINNED_TINY_MODEL,
            "trainer.max_steps=30",
            "trainer.eval_every=0",
            "trainer.checkpoint_every=2",
            "trainer.keep_last=10",
            "trainer.average_last=0",
        ]
    )
    trainer = Trainer(cfg, tmp_path)
    history = []  # (update, loss, weights changed)

    real_loss, real_step = scheduled_sampling.output_layer_loss, Trainer._train_step

    def poisoned_loss(features, layer, tgt_out, label_smoothing=0.0):
        loss = real_loss(features, layer, tgt_out, label_smoothing)
        if trainer.progress.step + 1 not in POISONED:
            return loss
        if where == "loss":
            return loss * float("nan")
        features.register_hook(lambda grad: grad * float("inf"))  # finite loss, Inf gradient
        return loss

    def watched_step(self, batches):
        before = weights(self.model)
        loss, tokens = real_step(self, batches)
        after = weights(self.model)
        changed = any(not torch.equal(before[k], after[k]) for k in before)
        history.append((self.progress.step + 1, loss, changed))
        return loss, tokens

    monkeypatch.setattr(scheduled_sampling, "output_layer_loss", poisoned_loss)
    monkeypatch.setattr(Trainer, "_train_step", watched_step)

    with caplog.at_level(logging.WARNING), pytest.raises(TrainingError) as info:
        trainer.train()

    assert str(info.value).startswith(
        f"training diverged: {MAX_BAD_STEPS} NaN/Inf losses in a row at step 10"
    )
    assert [step for step, *_ in history] == list(range(1, 11))
    for step, loss, changed in history:
        if step in POISONED:
            assert loss is None and not changed, f"update {step} was applied"
        else:
            assert loss is not None and loss > 0 and changed, f"update {step} was skipped"
    skipped = [r.getMessage() for r in caplog.records if "update skipped" in r.getMessage()]
    assert skipped == [
        "step 4: loss or gradient is NaN/Inf; update skipped (1 in a row)",
        *(
            f"step {s}: loss or gradient is NaN/Inf; update skipped ({s - 5} in a row)"
            for s in range(6, 11)
        ),
    ]
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["skipped_updates"] == len(POISONED) and summary["updates"] == 4
    assert summary["error"].startswith("TrainingError: training diverged")
    saved = sorted((tmp_path / "checkpoints").glob("*.pt"))
    assert {p.name for p in saved} == {
        "last.pt",
        "step_2.pt",
        "step_4.pt",
        "step_6.pt",
        "step_8.pt",
    }
    for path in saved:
        for name, tensor in load_checkpoint(path)["model"].items():
            assert torch.isfinite(tensor).all(), f"{path.name}: {name} is not finite"


def test_a_model_with_nan_weights_is_never_saved(tmp_path, caplog):
    cfg = make_config([*TINY, *PINNED_TINY_MODEL, "trainer.max_steps=2", "trainer.eval_every=0"])
    trainer = Trainer(cfg, tmp_path)
    trainer.train()
    files = [tmp_path / "checkpoints" / name for name in ("last.pt", "best.pt")]
    before = [path.read_bytes() for path in files]
    with torch.no_grad():
        next(trainer.model.parameters())[0] = float("nan")
    with caplog.at_level(logging.ERROR):
        trainer.save("last.pt")
        trainer.save("best.pt", full=False)
        trainer.save("step_3.pt")
    assert [path.read_bytes() for path in files] == before
    assert not (tmp_path / "checkpoints" / "step_3.pt").exists()
    for name in ("last.pt", "best.pt", "step_3.pt"):
        assert f"not writing {name}: the model has NaN/Inf weights" in caplog.text
