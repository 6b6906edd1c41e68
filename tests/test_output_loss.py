"""The fused output layer + loss equals the plain path: the output layer's logits and
`F.cross_entropy` with label smoothing, padding ignored."""

import pytest
import torch

from seq2seq.nn import products
from seq2seq.nn.output_loss import ROWS_PER_CHUNK, output_layer_loss, token_loss
from seq2seq.tokenizers import PAD_ID


def case(rows: int = 3 * ROWS_PER_CHUNK + 5, vocab: int = 301, bias: bool = True):
    torch.manual_seed(0)
    layer = torch.nn.Linear(24, vocab, bias=bias)
    features = torch.randn(rows // 7 + 1, 7, 24, requires_grad=True)
    tgt_out = torch.randint(PAD_ID + 1, vocab, features.shape[:2])
    tgt_out[0, 3:] = PAD_ID  # a short sentence
    tgt_out[-1, :] = PAD_ID  # and a row of padding only
    return layer, features, tgt_out


def loss_and_gradients(loss_fn, layer, features, tgt_out):
    layer.zero_grad(set_to_none=True)
    features.grad = None
    loss = loss_fn()
    loss.backward()
    grads = [features.grad, layer.weight.grad]
    if layer.bias is not None:
        grads.append(layer.bias.grad)
    return loss.detach(), [g.clone() for g in grads]


@pytest.mark.parametrize("onednn", [True, False], ids=["onednn-products", "torch-products"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_equals_plain_in_float32(smoothing, bias, onednn, monkeypatch):
    monkeypatch.setattr(products, "onednn_fp32", lambda: onednn)  # both paths, on any CPU
    layer, features, tgt_out = case(bias=bias)
    plain = loss_and_gradients(
        lambda: token_loss(layer(features), tgt_out, smoothing), layer, features, tgt_out
    )
    fused = loss_and_gradients(
        lambda: output_layer_loss(features, layer, tgt_out, smoothing), layer, features, tgt_out
    )
    torch.testing.assert_close(fused[0], plain[0], rtol=1e-6, atol=1e-4)
    for got, want in zip(fused[1], plain[1], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_fused_follows_bf16_autocast_as_the_plain_path_does():
    layer, features, tgt_out = case()

    def under_autocast(fn):
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return fn()

        return run

    plain = loss_and_gradients(
        under_autocast(lambda: token_loss(layer(features), tgt_out, 0.1)), layer, features, tgt_out
    )
    fused = loss_and_gradients(
        under_autocast(lambda: output_layer_loss(features, layer, tgt_out, 0.1)),
        layer,
        features,
        tgt_out,
    )
    torch.testing.assert_close(fused[0], plain[0], rtol=1e-5, atol=1e-3)
    for got, want in zip(fused[1], plain[1], strict=True):
        assert got.dtype == want.dtype == torch.float32
        # bf16 products: both round the logits' gradient to 8 bits, at different points
        assert float((got - want).abs().max()) <= 0.01 * float(want.abs().max())


def test_a_scaled_backward_scales_every_gradient():
    layer, features, tgt_out = case()
    _, once = loss_and_gradients(
        lambda: output_layer_loss(features, layer, tgt_out, 0.1), layer, features, tgt_out
    )
    _, scaled = loss_and_gradients(
        lambda: 8.0 * output_layer_loss(features, layer, tgt_out, 0.1), layer, features, tgt_out
    )
    for got, want in zip(scaled, once, strict=True):
        torch.testing.assert_close(got, 8.0 * want)


def test_without_grad_it_gives_the_loss_alone():
    layer, features, tgt_out = case()
    with torch.no_grad():
        loss = output_layer_loss(features, layer, tgt_out, 0.1)
        plain = token_loss(layer(features), tgt_out, 0.1)
    assert not loss.requires_grad
    torch.testing.assert_close(loss, plain, rtol=1e-6, atol=1e-4)


def test_only_padding_gives_zero_loss_and_zero_gradients():
    layer, features, _ = case()
    tgt_out = torch.full(features.shape[:2], PAD_ID)
    loss, grads = loss_and_gradients(
        lambda: output_layer_loss(features, layer, tgt_out, 0.1), layer, features, tgt_out
    )
    assert float(loss) == 0.0
    assert all(float(g.abs().max()) == 0.0 for g in grads)


def test_tied_weights_get_one_summed_gradient():
    layer, features, tgt_out = case(vocab=50)
    embedding = torch.nn.Embedding(50, 24)
    layer.weight = embedding.weight
    tokens = tgt_out.clamp(max=49)

    def loss(fn):
        embedding.zero_grad(set_to_none=True)
        total = fn(features + embedding(tokens), tokens)
        total.backward()
        return embedding.weight.grad.clone()

    plain = loss(lambda x, y: token_loss(layer(x), y, 0.1))
    fused = loss(lambda x, y: output_layer_loss(x, layer, y, 0.1))
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)
