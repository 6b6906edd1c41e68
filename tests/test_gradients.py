"""Gradient flow through time, truncated BPTT, initialisation and clipping.

T = 50, loss on h_T only, r = ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ (seq2seq.nn.gradient_flow.gradient_flow).
"""

from __future__ import annotations

import csv
import json

import pytest
import torch
from torch import nn

from seq2seq import registry
from seq2seq.commands.diagnose import clipping_report, gradient_flow
from seq2seq.commands.diagnose import main as diagnose_main
from seq2seq.lm.tbptt import Window, plan_updates, run_window
from seq2seq.nn.initialization import initialize
from seq2seq.nn.recurrent import RecurrentStack

T = 50


def ratio(cell: str, options: dict | None = None, init: str = "default", std: float = 1.0):
    norms = gradient_flow(cell, options, init, std, steps=T)
    assert norms.shape == (T,) and torch.isfinite(norms).all()
    return float(norms[0] / norms[-1])


def test_sigmoid_elman_with_default_init_vanishes():
    assert ratio("elman", {"activation": "sigmoid"}) < 1e-6


def test_tanh_elman_with_gaussian_std1_explodes():
    assert ratio("elman", {"activation": "tanh"}, "gaussian", 1.0) > 1e3


def test_lstm_with_forget_bias_1_keeps_1000x_more_gradient_than_tanh_elman():
    lstm = ratio("lstm", {"forget_bias": 1.0})
    tanh = ratio("elman", {"activation": "tanh"})
    assert lstm >= 1000 * tanh


def test_gradient_flow_follows_the_backward_recursion_of_a_tanh_elman_cell():
    """Checked against the chain rule written out by hand: with h_t = tanh(a_t),
    ∂L/∂h_T = w in every row, and ∂L/∂h_(t-1) = (∂L/∂h_t ⊙ (1 - h_t²)) W_hh."""
    steps, batch, inputs, hidden = 12, 8, 32, 64
    norms = gradient_flow("elman", {"activation": "tanh"}, steps=steps)
    torch.manual_seed(0)  # the same draws as gradient_flow: the cell, then x and w
    cell = registry.load("seq2seq.cells", "elman")(inputs, hidden, activation="tanh").double()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, steps, inputs, generator=generator, dtype=torch.float64)
    w = torch.randn(hidden, generator=generator, dtype=torch.float64)
    rnn = cell.rnn
    with torch.no_grad():
        h, states = torch.zeros(batch, hidden, dtype=torch.float64), []
        for t in range(steps):
            h = torch.tanh(
                x[:, t] @ rnn.weight_ih_l0.T
                + rnn.bias_ih_l0
                + h @ rnn.weight_hh_l0.T
                + rnn.bias_hh_l0
            )
            states.append(h)
        grad, expected = w.expand(batch, hidden), []
        for t in reversed(range(steps)):
            expected.append(grad.norm())
            grad = (grad * (1 - states[t] ** 2)) @ rnn.weight_hh_l0
    torch.testing.assert_close(norms, torch.stack(expected[::-1]), rtol=1e-9, atol=0)
    assert norms[0] < norms[-1] / 2  # and over 12 steps it does shrink


# ----------------------------------------------------------------- TBPTT
def test_plan_updates_covers_every_step_once_with_the_right_depth():
    for length, k1, k2 in [(50, 10, 10), (50, 10, 25), (50, 20, 5), (7, 3, 100), (50, None, None)]:
        windows = plan_updates(length, k1, k2)
        covered = [t for w in windows for t in range(w.loss_start, w.end)]
        assert covered[-1] == length - 1
        if k2 is None or k1 is None or k2 >= k1:
            assert covered == list(range(length))  # every step carries loss exactly once
        for w in windows:
            assert w.anchor <= w.start <= w.split <= w.end
            assert w.start == max(0, w.end - (k2 or length))  # backprop depth k2 from the update
    assert plan_updates(50, None, None) == [Window(0, 0, 0, 50, 0)]  # full BPTT: one window
    with pytest.raises(ValueError, match="tbptt.k2"):
        plan_updates(10, 5, 0)


def _stack(seed: int = 0) -> RecurrentStack:
    torch.manual_seed(seed)
    return RecurrentStack(registry.load("seq2seq.cells", "elman"), 4, 16, num_layers=2).double()


def _tbptt_grads(k1, k2, stack=None, seed=1):
    """Gradients of every TBPTT update's loss (sum of outputs' last unit) w.r.t. the inputs."""
    stack = stack or _stack()
    x = torch.randn(3, T, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    x.requires_grad_(True)

    def run(lo, hi, state):
        return stack(x[:, lo:hi], state=state)

    state = stack.initial_state(3, dtype=torch.float64)
    results = []
    for w in plan_updates(T, k1, k2):
        out, state = run_window(run, state, w)
        loss = out[:, -1].sum()  # the loss on h at the update step
        gx, *gp = torch.autograd.grad(loss, [x, *stack.parameters()])
        results.append((w, gx, gp))
    return results


@pytest.mark.parametrize("k2", [1, 10, 25, 49])
def test_truncated_bptt_gives_exactly_zero_gradient_beyond_k2_steps(k2):
    ((w, gx, _),) = _tbptt_grads(T, k2)  # one update at t = T with loss on h_T
    per_step = gx.abs().sum(dim=(0, 2))
    assert torch.all(per_step[: T - k2] == 0)  # exactly zero beyond k2 steps
    assert torch.all(per_step[T - k2 :] > 0)


def test_truncated_bptt_windows_each_reach_back_exactly_k2_steps():
    for k1, k2 in [(10, 25), (10, 10), (20, 5)]:
        for w, gx, _ in _tbptt_grads(k1, k2):
            reached = (gx.abs().sum(dim=(0, 2)) > 0).nonzero().flatten().tolist()
            assert reached == list(range(max(0, w.end - k2), w.end))


@pytest.mark.parametrize("k2", [T, T + 30, None])
def test_truncated_bptt_equals_full_bptt_when_k2_covers_the_sequence(k2):
    stack = _stack()
    ((_, gx, gp),) = _tbptt_grads(T, k2, stack)
    x = torch.randn(3, T, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x.requires_grad_(True)
    out, _ = stack(x)
    full_x, *full_p = torch.autograd.grad(out[:, -1].sum(), [x, *stack.parameters()])
    assert torch.equal(gx, full_x)
    for a, b in zip(gp, full_p, strict=True):
        assert torch.equal(a, b)


# ---------------------------------------------------------- initialisation
def test_initialisation_schemes():
    torch.manual_seed(0)
    factory = registry.load("seq2seq.cells", "lstm")
    cell = factory(32, 64, forget_bias=1.0)
    before = {k: v.clone() for k, v in cell.state_dict().items()}
    initialize(cell, "default")
    assert all(torch.equal(before[k], v) for k, v in cell.state_dict().items())

    initialize(cell, "gaussian", std=1.0)
    w = cell.rnn.weight_hh_l0
    assert w.std().item() == pytest.approx(1.0, rel=0.05) and abs(w.mean().item()) < 0.05
    assert torch.equal(cell.rnn.bias_ih_l0, before["rnn.bias_ih_l0"])  # biases kept
    initialize(cell, "gaussian", std=0.01)
    assert cell.rnn.weight_ih_l0.std().item() == pytest.approx(0.01, rel=0.05)

    initialize(cell, "orthogonal")
    for gate in cell.rnn.weight_hh_l0.detach().split(64):  # each gate block is orthogonal
        assert torch.allclose(gate @ gate.T, torch.eye(64), atol=1e-5)

    initialize(cell, "xavier")
    expected = (2 / (64 + 64)) ** 0.5  # one gate's fan
    assert cell.rnn.weight_hh_l0.std().item() == pytest.approx(expected, rel=0.1)

    with pytest.raises(ValueError, match="model.init"):
        initialize(cell, "uniformish")
    with pytest.raises(ValueError, match="init_std"):
        initialize(cell, "gaussian", std=0.0)


# ------------------------------------------------------------ diagnose CLI
class ToyCell(nn.Module):
    """A plugin-style cell registered in-process: h_t = tanh(W x_t + U h_{t-1})."""

    def __init__(self, input_size: int, hidden_size: int, scale: float = 1.0) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.ih = nn.Linear(input_size, hidden_size)
        self.hh = nn.Linear(hidden_size, hidden_size, bias=False)
        self.scale = scale

    def initial_state(self, batch_size, device=None, dtype=None):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def forward(self, x, state):
        h = torch.tanh(self.ih(x) + self.scale * self.hh(state))
        return h, h


@pytest.fixture
def toy_cell():
    registry.register("cells", "toy_test_cell", ToyCell)
    yield "toy_test_cell"
    registry.unregister("cells", "toy_test_cell")


def test_diagnose_gradients_writes_csv_and_log_plot_for_any_cell(tmp_path, toy_cell, capsys):
    code = diagnose_main(
        [
            "gradients",
            f"out_dir={tmp_path}",
            "steps=12",
            "hidden_size=8",
            "input_size=4",
            f"cells=[{{cell: {toy_cell}, cell_options: {{scale: 2.0}}}}, {{cell: gru}}]",
            "inits=[{init: default}, {init: gaussian, std: 1.0}]",
        ]
    )
    assert code == 0
    with open(tmp_path / "gradient_flow.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 12
    assert {r["cell"] for r in rows} == {toy_cell, "gru"}
    assert {r["t"] for r in rows} == {str(t) for t in range(1, 13)}
    last = [r for r in rows if r["t"] == "12"]
    assert all(float(r["ratio_to_T"]) == 1.0 for r in last)
    assert (tmp_path / "gradient_flow.png").read_bytes()[:4] == b"\x89PNG"
    assert "r = |dL/dh_1| / |dL/dh_T|" in capsys.readouterr().out


def test_diagnose_reports_unknown_cells_clearly(tmp_path, capsys):
    code = diagnose_main(["gradients", f"out_dir={tmp_path}", "cells=[{cell: nosuchcell}]"])
    assert code == 2
    assert "nosuchcell" in capsys.readouterr().err


def test_clipping_report_reads_a_run(tmp_path, capsys):
    records = [
        {"step": 10, "clip_events": 3, "clip_fraction": 0.3, "clip_events_total": 3,
         "updates_total": 10},
        {"step": 12, "event": "end", "clip_norm": 1.0, "clip_events_total": 4,
         "updates_total": 12},
    ]  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    report = clipping_report(tmp_path)
    assert (report["clip_events"], report["updates"]) == (4, 12)
    assert diagnose_main(["clipping", str(tmp_path)]) == 0
    assert "fired in 4 of 12 updates" in capsys.readouterr().out
