"""The output layer and its label-smoothed cross-entropy as one operation.

Written plainly (`F.cross_entropy(output_layer(features))`), training keeps the [N, V]
logits, their log-softmax and, in the backward, three more [N, V] tensors: a zeroed
gradient, the smoothing term's and their sum. Here the forward computes the loss and
the gradient with respect to the logits together, a few rows at a time while those
rows are in cache, into the logits' own buffer; the backward is then two matrix
products. The result and the gradients equal the plain path's (tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seq2seq.nn.products import linear
from seq2seq.tokenizers import PAD_ID

ROWS_PER_CHUNK = 64  # 64 × 8,000 float32 logits: 2 MB, about one core's L2


def token_loss(logits: Tensor, tgt_out: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy summed over the non-padding target tokens: the plain path.

    logits: [B, T, V]; tgt_out: [B, T].
    """
    return F.cross_entropy(
        logits.flatten(0, 1).float(),
        tgt_out.flatten(),
        ignore_index=PAD_ID,
        label_smoothing=label_smoothing,
        reduction="sum",
    )


def output_layer_loss(
    features: Tensor, layer: nn.Linear, tgt_out: Tensor, label_smoothing: float = 0.0
) -> Tensor:
    """Cross-entropy of `layer(features)` summed over the non-padding targets, smoothed as
    `F.cross_entropy(..., label_smoothing=)` smooths it.

    features: [B, T, H]; tgt_out: [B, T]. Under autocast the products run in its dtype
    and the softmax in float32, as autocast runs the plain path.
    """
    keep = tgt_out.reshape(-1) != PAD_ID
    rows = features.reshape(-1, features.size(-1))[keep]
    weight, bias = layer.weight, layer.bias
    if bias is None:
        bias = rows.new_zeros(layer.out_features)
    if not torch.is_grad_enabled():  # no gradient will be asked for: compute none
        rows, weight, bias = rows.detach(), weight.detach(), bias.detach()
    device = features.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
    return _OutputLayerLoss.apply(
        rows, weight, bias, tgt_out.reshape(-1)[keep], label_smoothing, dtype
    )


class _OutputLayerLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rows, weight, bias, targets, smoothing: float, dtype):
        """rows [N, H], weight [V, H], bias [V], targets [N] → the summed loss (a scalar)."""
        compute = dtype or rows.dtype
        with torch.autocast(rows.device.type, enabled=False):
            x, w = rows.to(compute), weight.to(compute)
            logits = linear(x, w, bias.to(compute))  # [N, V]
            needs_grad = any(ctx.needs_input_grad[:3])
            total = torch.zeros((), dtype=torch.float32, device=rows.device)
            bias_grad = torch.zeros(bias.shape, dtype=torch.float32, device=rows.device)
            vocab = logits.size(1)
            for start in range(0, logits.size(0), ROWS_PER_CHUNK):
                chunk = logits[start : start + ROWS_PER_CHUNK]
                z = chunk.float()  # the chunk itself in float32, else its float32 copy
                gold = targets[start : start + ROWS_PER_CHUNK, None]
                picked = z.gather(1, gold).squeeze(1)
                mean = z.mean(1)
                peak = z.amax(1, keepdim=True)
                z.sub_(peak).exp_()
                norm = z.sum(1, keepdim=True)
                log_norm = peak.squeeze(1) + norm.log().squeeze(1)
                # −log p(gold) and the mean −log p over the vocabulary, mixed.
                total += (
                    (1 - smoothing) * (log_norm - picked) + smoothing * (log_norm - mean)
                ).sum()
                if needs_grad:  # d loss / d logits = softmax − (1 − ε)·onehot − ε / V
                    z.mul_(norm.reciprocal_()).sub_(smoothing / vocab)
                    z.scatter_add_(1, gold, z.new_full(gold.shape, smoothing - 1))
                    bias_grad += z.sum(0)
                    if z is not chunk:
                        chunk.copy_(z)
        if needs_grad:
            ctx.save_for_backward(x, w, logits, bias_grad)
            ctx.dtypes = rows.dtype, weight.dtype, bias.dtype
        return total

    @staticmethod
    def backward(ctx, grad_total):
        x, w, logits_grad, bias_grad = ctx.saved_tensors
        rows_dtype, weight_dtype, bias_dtype = ctx.dtypes
        scale = grad_total.to(logits_grad.dtype)
        with torch.autocast(x.device.type, enabled=False):
            rows = weight = bias = None
            if ctx.needs_input_grad[0]:
                rows = linear(logits_grad, w.t()).mul_(scale).to(rows_dtype)
            if ctx.needs_input_grad[1]:
                # as its transpose, x.T @ logits_grad: oneDNN's faster layout for it
                weight = linear(x.t(), logits_grad.t()).t().mul_(scale).to(weight_dtype)
            if ctx.needs_input_grad[2]:
                bias = (bias_grad * grad_total).to(bias_dtype)
        return rows, weight, bias, None, None, None
