"""Attention decoders (bahdanau, luong), bridges, tied embeddings and dropout variants."""

from __future__ import annotations

import pytest
import torch
from _models import train_tiny

from seq2seq.nn.dropout import SequenceDropout
from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.translation.translator import Translator

DECODERS = [
    ("bahdanau", {}),
    ("bahdanau", {"input_feed": False, "bridge": "zero"}),
    ("luong", {}),
    ("luong", {"score": "dot", "input_feed": False}),
    ("luong", {"score": "general", "input_feed": False, "bridge": "last"}),
    ("bahdanau", {"bridge": "learned_full", "attention_output": "linear"}),
    ("luong", {"input_feed": False, "bridge": "learned_full", "attention_output": "linear"}),
]


def tiny_model(decoder: str, options: dict, layers: int = 2, cell: str = "lstm", **spec) -> Seq2Seq:
    torch.manual_seed(0)
    base = dict(
        cell=cell,
        embedding_size=16,
        hidden_size=24,
        encoder_hidden_size=12,
        bidirectional=True,
        num_layers=layers,
        decoder=decoder,
        decoder_options=options,
    )
    return Seq2Seq(ModelSpec(50, 60, **{**base, **spec}))


def batch():
    torch.manual_seed(1)
    src = torch.randint(4, 50, (3, 7))
    lengths = torch.tensor([7, 5, 2])
    tgt = torch.randint(4, 60, (3, 6))
    return src, lengths, tgt


def stepwise_log_probs(model: Seq2Seq, src, lengths, tgt):
    enc = model.encode(src, lengths)
    state = model.init_state(enc)
    out, weights = [], []
    for t in range(tgt.size(1)):
        logp, state = model.decode_step(tgt[:, t], enc, state)
        out.append(logp)
        weights.append(model.attention(state))
    return torch.stack(out, 1), torch.stack(weights, 1)


@pytest.mark.parametrize("decoder,options", DECODERS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_teacher_forcing_equals_the_step_path(decoder, options, cell):
    """The training forward (fused RNN + batched attention without input feeding)
    computes what generation computes one token at a time."""
    model = tiny_model(decoder, options, cell=cell).eval()
    src, lengths, tgt = batch()
    with torch.no_grad():
        full = torch.log_softmax(model(src, lengths, tgt), dim=-1)
        steps, weights = stepwise_log_probs(model, src, lengths, tgt)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-5)
    # Attention: a distribution over the real source tokens only.
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 6))
    assert weights[2, :, 2:].abs().max() == 0


def test_fixed_vector_decoder_has_no_attention():
    model = tiny_model("fixed", {}, layers=1).eval()
    src, lengths, tgt = batch()
    enc = model.encode(src, lengths)
    _, state = model.decode_step(tgt[:, 0], enc, model.init_state(enc))
    assert model.attention(state) is None


def test_keys_are_projected_once_and_follow_reordering():
    model = tiny_model("bahdanau", {}).eval()
    src, lengths, _ = batch()
    enc = model.encode(src, lengths)
    model.init_state(enc)
    keys = enc.extras["keys"]
    assert keys.shape == (3, 7, 24)
    picked = enc.index_select(torch.tensor([2, 0, 0]))
    torch.testing.assert_close(picked.extras["keys"], keys[[2, 0, 0]])


@pytest.mark.parametrize(
    "decoder,options,message",
    [
        ("luong", {"score": "dot"}, "dot attention needs"),
        ("bahdanau", {"score": "cosine"}, "attention score must be one of"),
        ("bahdanau", {"bridge": "last"}, "bridge 'last'"),
        ("bahdanau", {"bridge": "mean"}, "decoder bridge must be one of"),
        ("bahdanau", {"attention_output": "relu"}, "attention_output must be one of"),
    ],
)
def test_bad_decoder_options_are_named(decoder, options, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(decoder, options, encoder_hidden_size=8)


@pytest.mark.parametrize("fused", [True, False])
def test_encoder_memory_is_each_sentences_own_final_cell_state(fused):
    """The LSTM's final c of each direction, joined like the summary, at each sentence's
    own length: padding in a batch changes nothing."""
    model = tiny_model("bahdanau", {}, fused=fused).eval()
    src, lengths, _ = batch()
    with torch.no_grad():
        enc = model.encode(src, lengths)
        for row in range(3):
            alone = model.encode(src[row : row + 1, : lengths[row]], lengths[row : row + 1])
            torch.testing.assert_close(enc.memory[row], alone.memory[0], atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(enc.summary[row], alone.summary[0], atol=1e-6, rtol=1e-5)
    assert enc.memory.shape == (3, 24)
    assert not torch.allclose(enc.memory, enc.summary)
    assert tiny_model("bahdanau", {}, cell="gru").encode(src, lengths).memory is None


def test_full_bridge_maps_the_encoders_final_h_and_c():
    """OpenNMT-py's bridge: h = ReLU(W_h summary + b), c = ReLU(W_c memory + b), per layer;
    the plain learned bridge sets h = tanh(W summary + b) and leaves c at zero."""
    src, lengths, _ = batch()
    full = tiny_model("bahdanau", {"bridge": "learned_full"}).eval()
    with torch.no_grad():
        enc = full.encode(src, lengths)
        state = full.init_state(enc)[0]
        h = torch.relu(full.decoder.bridge(enc.summary)).split(24, dim=-1)
        c = torch.relu(full.decoder.memory_bridge(enc.memory)).split(24, dim=-1)
    for layer in range(2):
        torch.testing.assert_close(state[layer][0][0], h[layer])
        torch.testing.assert_close(state[layer][0][1], c[layer])
    assert all((layer[0][1] > 0).any() for layer in state)
    plain = tiny_model("bahdanau", {}).eval()
    with torch.no_grad():
        enc = plain.encode(src, lengths)
        state = plain.init_state(enc)[0]
        h = torch.tanh(plain.decoder.bridge(enc.summary)).split(24, dim=-1)
    for layer in range(2):
        torch.testing.assert_close(state[layer][0][0], h[layer])
        assert state[layer][0][1].abs().max() == 0


def test_linear_attention_output_is_affine():
    """attention_output=linear: the attentional vector is W [context; h] + b, unbounded,
    where the default squashes it through tanh (no bias)."""
    src, lengths, tgt = batch()
    vectors = {}
    for output in ("tanh", "linear"):
        model = tiny_model("bahdanau", {"attention_output": output}, layers=1).eval()
        with torch.no_grad():
            model.decoder.combine.weight.mul_(50)
            enc = model.encode(src, lengths)
            vectors[output], _ = model.decode_step(tgt[:, 0], enc, model.init_state(enc))[1][1:]
        assert (model.decoder.combine.bias is None) == (output == "tanh")
    assert vectors["tanh"].abs().max() <= 1
    assert vectors["linear"].abs().max() > 1


@pytest.mark.parametrize("output_dropout,dropped", [(None, True), (0.0, False)])
def test_encoder_output_dropout_is_its_own_setting(output_dropout, dropped):
    """model.encoder_output_dropout: null keeps model.dropout on the encoder's outputs;
    0 leaves them whole in training (OpenNMT-py applies none there)."""
    model = tiny_model(
        "bahdanau",
        {},
        layers=1,  # no dropout between layers
        dropout=0.5,
        embedding_dropout=0.0,
        encoder_output_dropout=output_dropout,
    ).train()
    src, lengths, _ = batch()
    with torch.no_grad():
        training = model.encode(src, lengths).states
        whole = model.eval().encode(src, lengths).states
    assert (not torch.allclose(training, whole)) == dropped


def test_tied_embeddings_share_one_matrix():
    decoder_tied = tiny_model("bahdanau", {}, embedding_size=24, tie_embeddings="decoder")
    assert decoder_tied.output_layer.weight is decoder_tied.tgt_embedding.weight
    assert decoder_tied.src_embedding.weight is not decoder_tied.tgt_embedding.weight
    torch.manual_seed(0)
    all_tied = Seq2Seq(
        ModelSpec(60, 60, embedding_size=24, hidden_size=24, decoder="luong", tie_embeddings="all")
    )
    assert all_tied.src_embedding.weight is all_tied.output_layer.weight
    untied = tiny_model("bahdanau", {}, embedding_size=24)
    saved = untied.num_parameters() - all_tied.num_parameters()
    assert saved > 0
    with pytest.raises(ValueError, match="joint vocabulary"):
        tiny_model("bahdanau", {}, embedding_size=24, tie_embeddings="all")
    with pytest.raises(ValueError, match="must equal model.embedding_size"):
        tiny_model("bahdanau", {}, tie_embeddings="decoder")
    with pytest.raises(ValueError, match="tie_embeddings must be one of"):
        tiny_model("bahdanau", {}, tie_embeddings="yes")


def test_variational_dropout_keeps_one_mask_across_time():
    drop = SequenceDropout(0.5, variational=True).train()
    x = torch.ones(4, 9, 32)
    y = drop(x)
    assert torch.equal(y[:, :1].expand_as(y), y)  # same units dropped at every step
    assert 0 < (y == 0).float().mean() < 1
    drop.reset()
    first = drop.step(torch.ones(4, 32))
    assert torch.equal(drop.step(torch.ones(4, 32)), first)
    drop.reset()
    later = [drop.step(torch.ones(4, 32)) for _ in range(2)]
    assert torch.equal(later[0], later[1]) and later[0].shape == first.shape
    standard = SequenceDropout(0.5).train()(x)
    assert not torch.equal(standard[:, :1].expand_as(standard), standard)
    assert torch.equal(SequenceDropout(0.5, variational=True).eval()(x), x)


def test_uniform_init_covers_every_parameter():
    model = tiny_model("bahdanau", {}, init="uniform", init_range=0.05)
    for name, param in model.named_parameters():
        assert param.abs().max() <= 0.05, name
    assert model.tgt_embedding.weight[0].abs().max() == 0  # padding row


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.decoder=bahdanau", "model.cell=lstm"],
        [
            "model.decoder=luong",
            "+model.decoder_options.input_feed=false",
            "+model.decoder_options.variational_dropout=true",
            "model.variational_dropout=true",
        ],
    ],
)
def test_attention_decoders_learn_on_real_data(tmp_path, overrides):
    """80 updates at lr 0.01: dev loss falls by 0.75–0.8 nats from the first evaluation
    (step 20) to the last (2 AVX2 cores; 120 updates at lr 0.003 fell 0.52–0.61 from
    step 40, to a higher final loss)."""
    run = train_tiny(
        tmp_path / "run",
        [*overrides, "trainer.max_steps=80", "trainer.eval_every=20", "trainer.lr=0.01"],
    )
    import json

    evals = [
        r for r in map(json.loads, open(run / "metrics.jsonl", encoding="utf-8")) if "dev_loss" in r
    ]
    assert evals[-1]["dev_loss"] < evals[0]["dev_loss"] - 0.5
    translator = Translator.from_checkpoint(run)
    out = [
        t.text
        for t in translator.translate(["A man is riding a bike.", ""], search="beam", beam_size=3)
    ]
    assert len(out) == 2 and out[0] and out[1] == ""


@pytest.mark.parametrize("cell", ["lstm", "gru", "elman"])
def test_fast_input_feeding_equals_the_plain_path(cell):
    """The split input projection (fast path) gives the plain path's logits and gradients."""
    src, lengths, tgt = batch()
    results = []
    for fused in (True, False):
        model = tiny_model("bahdanau", {}, cell=cell, fused=fused, dropout=0.0)
        logits = model(src, lengths, tgt)
        logits.pow(2).mean().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((logits.detach(), grads))
    (fast, fast_grads), (plain, plain_grads) = results
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
    assert fast_grads.keys() == plain_grads.keys()
    for name in fast_grads:
        torch.testing.assert_close(fast_grads[name], plain_grads[name], atol=1e-5, rtol=1e-4)


def test_mlp_attention_equals_the_tanh_formula():
    """The sigmoid form of additive attention gives Bahdanau's softmax(v·tanh(Uk + Wq)),
    weights and gradients alike."""
    from seq2seq.decoders.attention import Attention

    torch.manual_seed(0)
    attention = Attention("mlp", query_size=6, key_size=5, attention_size=7)
    states = torch.randn(3, 4, 5)
    query = torch.randn(3, 2, 6, requires_grad=True)
    mask = torch.tensor([[True] * 4, [True, True, True, False], [True, False, False, False]])
    context, weights = attention(query, attention.prepare(states), states, mask)

    hidden = torch.tanh(
        attention.key_proj(states).unsqueeze(1) + attention.query_proj(query).unsqueeze(2)
    )
    scores = attention.v(hidden).squeeze(-1).masked_fill(~mask.unsqueeze(1), -float("inf"))
    expected = torch.softmax(scores, dim=-1)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(context, torch.bmm(expected, states))
    assert torch.all(weights[2, :, 1:] == 0)

    (grad,) = torch.autograd.grad(context.sum(), query, retain_graph=True)
    (expected_grad,) = torch.autograd.grad(torch.bmm(expected, states).sum(), query)
    torch.testing.assert_close(grad, expected_grad)
