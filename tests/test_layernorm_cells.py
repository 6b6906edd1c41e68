"""The layer-normalised LSTM and GRU cells: contract, math, and use inside a model."""

import pytest
import torch
import torch.nn.functional as F

from seq2seq import registry
from seq2seq.nn.initialization import initialize
from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.testing import check_cell

NAMES = ("layernorm_lstm", "layernorm_gru")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    "name,options",
    [("layernorm_lstm", {}), ("layernorm_lstm", {"forget_bias": 1.0}), ("layernorm_gru", {})],
)
def test_cells_are_registered_and_pass_the_cell_contract(name, options):
    factory = registry.load("seq2seq.cells", name)
    check_cell(factory, **options)
    check_cell(factory, input_size=3, hidden_size=4, eps=1e-3, **options)


def test_states_follow_the_builtin_conventions():
    lstm = registry.load("seq2seq.cells", "layernorm_lstm")(5, 7)
    gru = registry.load("seq2seq.cells", "layernorm_gru")(5, 7)
    h, c = lstm.initial_state(3)
    assert h.shape == c.shape == (3, 7) and not h.any() and not c.any()
    assert gru.initial_state(3).shape == (3, 7)
    out, (h, c) = lstm(torch.randn(3, 5), lstm.initial_state(3))
    assert torch.equal(out, h)
    out, state = gru(torch.randn(3, 5), gru.initial_state(3))
    assert torch.equal(out, state)
    assert not hasattr(lstm, "forward_sequence") and not hasattr(gru, "forward_sequence")


def test_lstm_computes_the_layer_normalised_equations():
    torch.manual_seed(0)
    cell = registry.load("seq2seq.cells", "layernorm_lstm")(4, 6, forget_bias=1.0).double()
    with torch.no_grad():  # non-trivial gains and biases
        for p in (cell.norm_ih.weight, cell.norm_hh.weight, cell.norm_c.weight, cell.norm_c.bias):
            p.uniform_(0.5, 1.5)
    x, h, c = (torch.randn(2, n, dtype=torch.float64) for n in (4, 6, 6))
    H = 6

    def ln(v, norm):
        return F.layer_norm(v, v.shape[-1:], norm.weight, norm.bias, eps=1e-5)

    gates = ln(x @ cell.weight_ih.T, cell.norm_ih) + ln(h @ cell.weight_hh.T, cell.norm_hh)
    i, f, g, o = gates.split(H, dim=-1)
    c_new = f.sigmoid() * c + i.sigmoid() * g.tanh()
    h_new = o.sigmoid() * ln(c_new, cell.norm_c).tanh()
    out, (h_out, c_out) = cell(x, (h, c))
    torch.testing.assert_close(c_out, c_new)
    torch.testing.assert_close(h_out, h_new)
    assert cell.norm_hh.bias is None  # the gate bias lives in norm_ih only
    assert torch.all(cell.norm_ih.bias[H : 2 * H] == 1.0) and not cell.norm_ih.bias[:H].any()


@pytest.mark.parametrize("name", NAMES)
def test_projections_are_normalised_so_weight_scale_does_not_matter(name):
    """The point of layer norm: scaling W or U by a constant leaves the cell unchanged."""
    torch.manual_seed(0)
    cell = registry.load("seq2seq.cells", name)(5, 7, eps=1e-12).double()
    x = torch.randn(3, 5, dtype=torch.float64)
    state = tuple(torch.randn(3, 7, dtype=torch.float64) for _ in range(2 if "lstm" in name else 1))
    state = state if "lstm" in name else state[0]
    h, _ = cell(x, state)
    with torch.no_grad():
        cell.weight_ih.mul_(10.0)
        cell.weight_hh.mul_(0.1)
    h_scaled, _ = cell(x, state)
    torch.testing.assert_close(h, h_scaled, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_cells_train_inside_a_seq2seq_model_with_every_init(name):
    for scheme in ("default", "orthogonal"):
        torch.manual_seed(0)
        spec = ModelSpec(
            src_vocab_size=11,
            tgt_vocab_size=13,
            cell=name,
            embedding_size=8,
            hidden_size=12,
            num_layers=2,
            bidirectional=True,
            init=scheme,
        )
        model = Seq2Seq(spec)
        src = torch.randint(4, 11, (3, 6))
        tgt = torch.randint(4, 13, (3, 5))
        lengths = torch.tensor([6, 4, 2])
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        losses = []
        for _ in range(30):  # learn to reproduce three fixed target sentences
            optimizer.zero_grad()
            logits = model(src, lengths, tgt)
            assert logits.shape == (3, 5, 13)
            loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten())
            loss.backward()
            for weight, param in model.named_parameters():  # every cell weight learns
                if ".rnn.layers." in weight:
                    assert param.grad is not None and param.grad.abs().sum() > 0, weight
            optimizer.step()
            losses.append(loss.item())
        assert losses[-1] < 0.5 * losses[0], (name, scheme, losses[0], losses[-1])


def test_init_schemes_keep_the_layer_norm_parameters():
    cell = registry.load("seq2seq.cells", "layernorm_lstm")(5, 7, forget_bias=1.0)
    initialize(cell, "orthogonal")
    assert torch.all(cell.norm_ih.weight == 1.0) and torch.all(cell.norm_ih.bias[7:14] == 1.0)
    block = cell.weight_hh[:7].detach()  # each gate's recurrent block is orthogonal
    torch.testing.assert_close(block @ block.T, torch.eye(7), atol=1e-5, rtol=1e-5)
