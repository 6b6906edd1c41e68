"""fp16 training goes through a gradient scaler; its path is tested equal to the plain one.

float16 kernels need a GPU (this CPU's LSTM refuses them), so the scaler is exercised
here in fp32: scaling by a power of two and unscaling is exact, so the update must
equal the unscaled update bit for bit, and an overflow must skip the update.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from _models import PINNED_TINY_MODEL, TINY, make_config

from seq2seq.hardware import check_precision, grad_scaler
from seq2seq.training.trainer import Trainer


@pytest.fixture(scope="module")
def trainer(tmp_path_factory) -> Trainer:
    run_dir: Path = tmp_path_factory.mktemp("fp16")
    # no dropout: the two copies compared must draw nothing from the RNG
    trainer = Trainer(make_config([*TINY, *PINNED_TINY_MODEL, "model.dropout=0"]), run_dir)
    trainer.setup()
    return trainer


def one_update(trainer: Trainer, scaler: torch.amp.GradScaler, overflow: bool = False):
    """Weights and progress after one update from the trainer's current state; `overflow`
    makes one gradient infinite, as a too-large loss scale does in float16."""
    trainer = copy.deepcopy(trainer)
    trainer.updater.scaler = scaler
    if overflow:
        next(trainer.model.parameters()).register_hook(lambda grad: grad * float("inf"))
    batches = [next(trainer.epoch_source(0))]
    loss, tokens = trainer._train_step(batches)
    return trainer, loss, tokens


def test_fp16_is_refused_off_gpu_with_the_reason() -> None:
    with pytest.raises(ValueError, match="trainer.precision=fp16 needs a CUDA GPU"):
        check_precision("cpu", "fp16", "trainer.precision")
    assert not grad_scaler("cpu", "fp32").is_enabled()


def test_scaled_update_equals_the_plain_update(trainer: Trainer) -> None:
    plain, plain_loss, tokens = one_update(trainer, grad_scaler("cpu", "fp32"))
    scaled, scaled_loss, scaled_tokens = one_update(
        trainer, torch.amp.GradScaler("cpu", init_scale=1024.0)
    )
    assert scaled_loss == plain_loss and scaled_tokens == tokens
    assert scaled.progress.updates == plain.progress.updates == 1
    for (name, a), b in zip(plain.model.named_parameters(), scaled.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert not torch.equal(
        next(plain.model.parameters()), next(trainer.model.parameters())
    )  # it did update


def test_overflow_skips_the_update_and_lowers_the_scale(trainer: Trainer) -> None:
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    after, loss, _ = one_update(trainer, scaler, overflow=True)
    assert loss is not None and loss > 0  # the loss itself was fine: not a bad step
    assert after.progress.updates == 0
    assert scaler.get_scale() == 512.0
    for a, b in zip(after.model.parameters(), trainer.model.parameters(), strict=True):
        assert torch.equal(a, b)
