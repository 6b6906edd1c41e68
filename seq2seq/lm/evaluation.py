"""Held-out bits per character: the character LM's dev score, which picks best.pt."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seq2seq.lm.data import eval_streams
from seq2seq.lm.model import LN2, CharLM


def held_out_scores(
    model: CharLM, valid_ids: torch.Tensor, streams: int, chunk: int, device: torch.device
) -> dict[str, float]:
    """Bits and nats per character over every held-out character after the first.

    valid_ids: [N] character ids, cut into `streams` parallel streams and run `chunk`
    steps at a time with the state carried across chunks (so memory stays bounded).
    """
    was_training = model.training
    model.eval()
    inputs, targets = eval_streams(valid_ids, streams)
    inputs, targets = inputs.to(device), targets.to(device)
    total, count = 0.0, 0
    with torch.inference_mode():
        state = model.initial_state(inputs.size(0))
        for lo in range(0, inputs.size(1), chunk):
            logits, state = model(inputs[:, lo : lo + chunk], state)
            tgt = targets[:, lo : lo + chunk]
            total += float(
                F.cross_entropy(
                    logits.flatten(0, 1).float(), tgt.flatten(), ignore_index=-100, reduction="sum"
                )
            )
            count += int((tgt != -100).sum())
    model.train(was_training)
    loss = total / max(count, 1)
    return {"valid_bpc": loss / LN2, "valid_loss": loss, "valid_chars": count}
