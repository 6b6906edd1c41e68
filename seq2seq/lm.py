"""Character-level language model trained with truncated backpropagation through time.

`python -m seq2seq.train +exp=char_lm` (or `+exp=hello`) lands here through
`seq2seq.train.train` when `task: lm`.

Truncated BPTT (Williams & Peng 1990), `trainer.tbptt.k1` / `trainer.tbptt.k2`:
each of the `trainer.batch_size` streams is consumed k1 characters at a time; after
every k1 new characters one update is made, whose loss is the cross-entropy of the
newest min(k1, k2) characters and whose backward pass reaches back exactly k2 steps
from the update. The hidden state is carried across updates and detached at the
truncation point, so no gradient ever flows further back than k2 steps:

- k1 = k2 = k: the usual chunked TBPTT (state carried, detached between chunks);
- k2 > k1: overlapping windows; the k2 - k1 older steps are re-run from the state
  that was kept (detached) at the window's start;
- k2 < k1: the first k1 - k2 new steps of a chunk only advance the state (no gradient,
  no loss).

Unset k1 means one update per pass over the stream; unset k2 means backpropagating
to the start of the stream; both unset is full BPTT (meant for short texts such as
"hello"). The state starts from zeros at the start of every epoch.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from . import registry
from .checkpoint import CheckpointError, load_checkpoint
from .init import initialize
from .lm_data import CharVocab, eval_streams, load_text, make_streams, save_vocab, shuffle_lines
from .rnn import RecurrentStack, State, map_state
from .run_base import TrainingError, TrainingRun
from .trainer import (
    MAX_BAD_STEPS,
    rng_state,
    seed_everything,
    set_rng_state,
)

log = logging.getLogger(__name__)

LN2 = math.log(2.0)


# ------------------------------------------------------------------ model
@dataclass
class LMSpec:
    """Everything needed to rebuild a character LM; stored in every checkpoint."""

    vocab_size: int
    cell: str = "lstm"
    cell_options: dict[str, Any] = field(default_factory=dict)
    embedding_size: int | None = 64  # None or 0: one-hot inputs
    hidden_size: int = 512
    num_layers: int = 1
    dropout: float = 0.0
    fused: bool = True
    init: str = "default"
    init_std: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, model_cfg: Any, vocab_size: int) -> LMSpec:
        options = (
            OmegaConf.to_container(model_cfg, resolve=True)
            if isinstance(model_cfg, DictConfig)
            else dict(model_cfg)
        )
        known = set(cls.__dataclass_fields__) - {"vocab_size"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"model: unknown key(s) {unknown} for task=lm; known keys: {sorted(known)}"
            )
        return cls(vocab_size=vocab_size, **options)


class CharLM(nn.Module):
    """characters → embedding (or one-hot) → recurrent layers (any registered cell) → logits."""

    def __init__(self, spec: LMSpec) -> None:
        super().__init__()
        self.spec = spec
        factory = registry.load("seq2seq.cells", spec.cell)
        validate = getattr(registry, "validate_options", None)
        if validate is not None:
            validate(
                "cell",
                spec.cell,
                factory,
                spec.cell_options,
                fixed=(1, 1),
                source="model.cell_options",
            )
        input_size = spec.embedding_size or spec.vocab_size
        self.embedding = (
            nn.Embedding(spec.vocab_size, spec.embedding_size) if spec.embedding_size else None
        )
        self.rnn = RecurrentStack(
            factory,
            input_size,
            spec.hidden_size,
            num_layers=spec.num_layers,
            dropout=spec.dropout,
            cell_options=spec.cell_options,
            fused=spec.fused,
        )
        self.dropout = nn.Dropout(spec.dropout)
        self.output = nn.Linear(spec.hidden_size, spec.vocab_size)
        initialize(self.rnn, spec.init, spec.init_std)

    def embed(self, ids: Tensor) -> Tensor:
        if self.embedding is None:
            return F.one_hot(ids, self.spec.vocab_size).to(self.output.weight.dtype)
        return self.embedding(ids)

    def initial_state(self, batch_size: int) -> list[list[State]]:
        weight = self.output.weight
        return self.rnn.initial_state(batch_size, device=weight.device, dtype=weight.dtype)

    def hidden(self, ids: Tensor, state: list[list[State]]) -> tuple[Tensor, list[list[State]]]:
        """Top-layer hidden states [B, T, H] for ids [B, T], and the state after them."""
        return self.rnn(self.embed(ids), state=state)

    def logits(self, hidden: Tensor) -> Tensor:
        return self.output(self.dropout(hidden))

    def forward(
        self, ids: Tensor, state: list[list[State]] | None = None
    ) -> tuple[Tensor, list[list[State]]]:
        if state is None:
            state = self.initial_state(ids.size(0))
        hidden, state = self.hidden(ids, state)
        return self.logits(hidden), state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def detach_state(state: Any) -> Any:
    return map_state(lambda t: t.detach(), state)


# ------------------------------------------------------------- truncated BPTT
@dataclass(frozen=True)
class Window:
    """One truncated-BPTT update over positions of a stream (half-open ranges).

    The state kept at `anchor` is advanced without gradient to `start`; gradient
    flows over [start, end); the state at `split` is kept (detached) as the next
    update's anchor; the loss covers [loss_start, end).
    """

    anchor: int
    start: int
    split: int
    end: int
    loss_start: int


def plan_updates(length: int, k1: int | None, k2: int | None) -> list[Window]:
    """The updates TBPTT(k1, k2) makes over a stream of `length` steps (see module doc)."""
    if length < 1:
        return []
    for name, k in (("k1", k1), ("k2", k2)):
        if k is not None and (not isinstance(k, int) or k < 1):
            raise ValueError(f"trainer.tbptt.{name} must be a positive integer or null, got {k!r}")
    k1 = k1 or length
    k2 = k2 or length
    ends = [min(p + k1, length) for p in range(0, length, k1)]
    windows, anchor, previous = [], 0, 0
    for i, end in enumerate(ends):
        start = max(end - k2, anchor)
        next_end = ends[i + 1] if i + 1 < len(ends) else end
        split = min(max(next_end - k2, start), end)
        windows.append(Window(anchor, start, split, end, max(previous, start)))
        anchor, previous = split, end
    return windows


Runner = Callable[[int, int, Any], tuple[Tensor, Any]]


def run_window(run: Runner, state: Any, window: Window) -> tuple[Tensor, Any]:
    """Run one TBPTT window; returns outputs for [loss_start, end) and the next anchor state.

    `run(lo, hi, state)` runs the network over positions [lo, hi) from `state` and
    returns (outputs [B, hi-lo, ...], state after position hi-1).
    """
    w = window
    if w.start > w.anchor:
        with torch.no_grad():
            _, state = run(w.anchor, w.start, state)
    state = detach_state(state)  # the truncation point: no gradient flows further back
    outputs = []
    if w.split > w.start:
        out, state = run(w.start, w.split, state)
        outputs.append(out)
    next_anchor = detach_state(state)
    if w.end > w.split:
        out, state = run(w.split, w.end, state)
        outputs.append(out)
    out = torch.cat(outputs, dim=1) if len(outputs) > 1 else outputs[0]
    return out[:, w.loss_start - w.start :], next_anchor


# ----------------------------------------------------------------- helpers
def target_probabilities(model: CharLM, vocab: CharVocab, text: str) -> Tensor:
    """Probabilities [T-1, V] the model gives each character after each prefix of `text`."""
    was_training = model.training
    model.eval()
    device = model.output.weight.device
    with torch.no_grad():
        ids = torch.tensor([vocab.encode(text)], device=device)
        logits, _ = model(ids[:, :-1])
    model.train(was_training)
    return logits[0].float().softmax(-1).cpu()


def confidence_table(model: CharLM, vocab: CharVocab, text: str) -> str:
    """The classic table: per time step, the confidence the model gives each character."""
    probs = target_probabilities(model, vocab, text)
    show = lambda c: repr(c)[1:-1] if c.isprintable() and c != " " else repr(c)
    head = ["step"] + [str(t + 1) for t in range(probs.size(0))]
    rows = [
        ["input"] + [show(c) for c in text[:-1]],
        ["target"] + [show(c) for c in text[1:]],
    ]
    targets = vocab.encode(text[1:])
    for j, char in enumerate(vocab.chars):
        cells = []
        for t in range(probs.size(0)):
            mark = "*" if targets[t] == j else " "
            cells.append(f"{probs[t, j]:.3f}{mark}")
        rows.append([f"P({show(char)})"] + cells)
    width = max(len(c) for row in [head, *rows] for c in row)
    lines = ["  ".join(c.rjust(width) for c in head)]
    lines += ["  ".join(c.rjust(width) for c in row) for row in rows]
    lines.append("(* = the target character)")
    return "\n".join(lines)


def load_lm(path: str | Path, device: str | torch.device = "cpu") -> tuple[CharLM, CharVocab, dict]:
    """Rebuild a character LM (and its vocabulary) from a checkpoint file or run directory."""
    payload = load_checkpoint(path)
    if "lm_spec" not in payload:
        raise CheckpointError(
            f"{path} is not a character language model checkpoint "
            "(train one with `python -m seq2seq.train +exp=char_lm`)"
        )
    model = CharLM(LMSpec(**payload["lm_spec"]))
    model.load_state_dict(payload["model"])
    model.to(device).eval()
    return model, CharVocab.from_state_dict(payload["vocab"]), payload


# ----------------------------------------------------------------- trainer
@dataclass
class LMProgress:
    step: int = 0  # updates attempted
    epoch: int = 0
    window: int = 0  # updates of `epoch` already made
    chars: int = 0  # characters that carried a loss
    best_bpc: float | None = None
    last_eval_step: int = -1
    clip_events: int = 0  # updates whose gradient norm exceeded trainer.clip_norm
    updates: int = 0  # updates actually applied (finite loss and gradient)
    skipped_steps: int = 0
    bad_steps: int = 0


class LMTrainer(TrainingRun):
    """Trains a character language model (`task: lm`) with truncated BPTT."""

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        super().__init__(cfg, run_dir)
        self.last_metrics: dict[str, float] | None = None
        tbptt = self.tcfg.get("tbptt") or {}
        self.k1 = tbptt.get("k1")
        self.k2 = tbptt.get("k2")
        self.clip_norm = float(self.tcfg.clip_norm) if self.tcfg.get("clip_norm") else None

    # ----------------------------------------------------------------- setup
    def setup(self) -> None:
        seed_everything(self.tcfg.seed)
        if self.tcfg.get("threads"):
            torch.set_num_threads(self.tcfg.threads)
        resumed = self.load_resume(
            ("optimizer", "lm_spec"),
            "it is not a full character-LM checkpoint (use the run's checkpoints/last.pt)",
        )
        data = self.cfg.data
        self.text = load_text(data)
        if resumed:
            self.vocab = CharVocab.from_state_dict(resumed["vocab"])
        else:
            self.vocab = CharVocab.build(
                self.text.train, int(data.get("min_char_count", 1)), unk=bool(data.get("unk", True))
            )
        save_vocab(self.vocab, self.run_dir / "vocab")
        self.train_ids = torch.tensor(self.vocab.encode(self.text.train), dtype=torch.long)
        self.valid_ids = torch.tensor(self.vocab.encode(self.text.valid), dtype=torch.long)
        if self.vocab.unk_id is not None:
            unseen = int((self.valid_ids == self.vocab.unk_id).sum())
            if unseen:
                log.info(
                    "%d held-out characters are outside the vocabulary (scored as U+FFFD)", unseen
                )
        self.newline_id = self.vocab.index.get("\n") if data.get("shuffle_lines", True) else None
        self.spec = LMSpec.from_config(self.cfg.model, len(self.vocab))
        self.model = CharLM(self.spec).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.tcfg.lr)
        self.progress = LMProgress()
        self.anchor_state: Any = None
        if resumed:
            self._restore(resumed)
        log.info(
            "char LM: %s %s, %d parameters; vocabulary %d characters; %d training and %d "
            "held-out characters from %s; TBPTT k1=%s k2=%s",
            self.spec.cell,
            self.spec.cell_options or "",
            self.model.num_parameters(),
            len(self.vocab),
            self.train_ids.numel(),
            self.valid_ids.numel(),
            self.text.source,
            self.k1 or "full",
            self.k2 or "full",
        )

    def _restore(self, payload: dict[str, Any]) -> None:
        saved = payload["lm_spec"]
        if saved != self.spec.to_dict():
            changed = sorted(k for k in saved if saved[k] != self.spec.to_dict().get(k))
            raise TrainingError(
                f"cannot resume: the checkpoint's model differs from the config in {changed}. "
                "Resume with the original model settings, or start a new run."
            )
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.progress = LMProgress(**payload["progress"])
        state = payload.get("anchor_state")
        self.anchor_state = map_state(lambda t: t.to(self.device), state) if state else None
        set_rng_state(payload["rng"])

    # ----------------------------------------------------------- checkpoints
    def _payload(self, full: bool) -> dict[str, Any]:
        payload = {
            "task": "lm",
            "lm_spec": self.spec.to_dict(),
            "model": self.model.state_dict(),
            "vocab": self.vocab.state_dict(),
            "config": OmegaConf.to_container(self.cfg, resolve=True),
            "progress": asdict(self.progress),
        }
        if full:
            payload.update(
                optimizer=self.optimizer.state_dict(),
                rng=rng_state(),
                anchor_state=map_state(lambda t: t.detach().cpu(), self.anchor_state)
                if self.anchor_state is not None
                else None,
            )
        return payload

    # ------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, float]:
        """Bits per character on the held-out text (every character after the first)."""
        self.model.eval()
        inputs, targets = eval_streams(self.valid_ids, self.tcfg.batch_size)
        inputs, targets = inputs.to(self.device), targets.to(self.device)
        chunk = int(self.tcfg.get("eval_chunk") or 500)
        total, count = 0.0, 0
        with torch.inference_mode():
            state = self.model.initial_state(inputs.size(0))
            for lo in range(0, inputs.size(1), chunk):
                logits, state = self.model(inputs[:, lo : lo + chunk], state)
                tgt = targets[:, lo : lo + chunk]
                total += float(
                    F.cross_entropy(
                        logits.flatten(0, 1).float(),
                        tgt.flatten(),
                        ignore_index=-100,
                        reduction="sum",
                    )
                )
                count += int((tgt != -100).sum())
        self.model.train()
        loss = total / max(count, 1)
        return {"valid_bpc": loss / LN2, "valid_loss": loss, "valid_chars": count}

    def _after_eval(self, metrics: dict[str, float]) -> None:
        p = self.progress
        self.last_metrics = metrics
        p.last_eval_step = p.step
        better = p.best_bpc is None or metrics["valid_bpc"] < p.best_bpc
        if better:
            p.best_bpc = metrics["valid_bpc"]
            self.save("best.pt", full=False)
        self._log({"step": p.step, "epoch": p.epoch, **metrics, "best_bpc": p.best_bpc})
        log.info(
            "step %d: held-out %.4f bits/char (%d chars)%s",
            p.step,
            metrics["valid_bpc"],
            metrics["valid_chars"],
            " (best)" if better else "",
        )

    # -------------------------------------------------------------- training
    def update(self, window: Window, inputs: Tensor, targets: Tensor, state: Any) -> dict[str, Any]:
        """One TBPTT update; returns loss (nats/char, None if non-finite), grad norm, clipped."""
        model = self.model

        def run(lo: int, hi: int, s: Any) -> tuple[Tensor, Any]:
            return model.hidden(inputs[:, lo:hi], s)

        hidden, next_anchor = run_window(run, state, window)
        tgt = targets[:, window.loss_start : window.end]
        loss = F.cross_entropy(model.logits(hidden).flatten(0, 1).float(), tgt.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        result = {"loss": None, "grad_norm": None, "clipped": False, "chars": tgt.numel()}
        result["next_state"] = next_anchor
        if not torch.isfinite(loss):
            return result
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), self.clip_norm or float("inf"))
        result["grad_norm"] = float(norm)
        if not torch.isfinite(norm):
            return result
        result["clipped"] = self.clip_norm is not None and float(norm) > self.clip_norm
        self.optimizer.step()
        result["loss"] = float(loss.detach())
        return result

    def _epoch_streams(self, epoch: int) -> tuple[Tensor, Tensor, list[Window]]:
        ids = shuffle_lines(self.train_ids, self.newline_id, self.tcfg.seed * 1000 + epoch)
        inputs, targets = make_streams(ids, self.tcfg.batch_size)
        return (
            inputs.to(self.device),
            targets.to(self.device),
            plan_updates(inputs.size(1), self.k1, self.k2),
        )

    def _show_table(self, when: str) -> None:
        table = confidence_table(self.model, self.vocab, self.text.valid[:41])
        text = f"confidence per time step ({when}):\n{table}\n"
        print(f"\n{text}", flush=True)
        with open(self.run_dir / "confidence.txt", "a", encoding="utf-8") as f:
            f.write(text + "\n")

    def clip_report(self) -> str:
        p = self.progress
        if not self.clip_norm:
            return "gradient clipping is off (trainer.clip_norm unset)"
        share = 100.0 * p.clip_events / max(p.updates, 1)
        return (
            f"gradient clipping (norm > {self.clip_norm:g}) fired in {p.clip_events} of "
            f"{p.updates} updates ({share:.1f}%)"
        )

    def train(self) -> dict[str, Any]:
        self.setup()
        self._install_signal_handlers()
        t, p = self.tcfg, self.progress
        show_table = bool(t.get("show_table"))
        if show_table and p.step == 0:
            self._show_table("before training")
        self.model.train()
        inputs, targets, windows = self._epoch_streams(p.epoch)
        log.info(
            "%d streams of %d characters; %d updates per epoch",
            inputs.size(0),
            inputs.size(1),
            len(windows),
        )
        bar = self.progress_bar(len(windows), "train lm")
        window_loss, window_steps, window_chars, window_clips = 0.0, 0, 0, 0
        window_start = time.monotonic()
        self.stop_reason = self.stop_reason or self._budget_exhausted()
        while self.stop_reason is None and p.epoch < t.max_epochs:
            if p.window == 0 or self.anchor_state is None:
                self.anchor_state = self.model.initial_state(inputs.size(0))
            while p.window < len(windows) and self.stop_reason is None:
                result = self.update(windows[p.window], inputs, targets, self.anchor_state)
                self.anchor_state = result["next_state"]
                p.window += 1
                p.step += 1
                if result["loss"] is None:
                    p.bad_steps += 1
                    p.skipped_steps += 1
                    log.warning(
                        "step %d: loss or gradient is NaN/Inf; update skipped (%d in a row)",
                        p.step,
                        p.bad_steps,
                    )
                    if p.bad_steps >= MAX_BAD_STEPS:
                        raise TrainingError(
                            f"training diverged: {MAX_BAD_STEPS} NaN/Inf losses in a row at "
                            f"step {p.step}. Lower trainer.lr, set trainer.clip_norm, or choose "
                            f"another model.init. The last good checkpoint is in {self.ckpt_dir}."
                        )
                else:
                    p.bad_steps = 0
                    p.updates += 1
                    p.chars += result["chars"]
                    p.clip_events += int(result["clipped"])
                    window_clips += int(result["clipped"])
                    window_loss += result["loss"]
                    window_steps += 1
                    window_chars += result["chars"]
                bar.update(1)
                if p.step % t.log_every == 0 and window_steps:
                    elapsed = time.monotonic() - window_start
                    record = {
                        "step": p.step,
                        "epoch": p.epoch,
                        "train_bpc": window_loss / window_steps / LN2,
                        "lr": self.optimizer.param_groups[0]["lr"],
                        "chars_per_s": window_chars / max(elapsed, 1e-9),
                        "grad_norm": result["grad_norm"],
                        "clip_events": window_clips,
                        "clip_fraction": window_clips / window_steps,
                        "clip_events_total": p.clip_events,
                        "updates_total": p.updates,
                    }
                    self._log(record)
                    postfix = {
                        "bpc": f"{record['train_bpc']:.3f}",
                        "char/s": f"{record['chars_per_s']:.0f}",
                        "clipped": f"{100 * record['clip_fraction']:.0f}%",
                    }
                    if t.get("max_time"):
                        left = max(0.0, t.max_time * 60 - (time.monotonic() - self.started))
                        postfix["time_left"] = f"{left / 60:.1f}min"
                    bar.set_postfix(postfix)
                    window_loss, window_steps, window_chars, window_clips = 0.0, 0, 0, 0
                    window_start = time.monotonic()
                if t.eval_every and p.step % t.eval_every == 0:
                    self._after_eval(self.evaluate())
                self.stop_reason = self.stop_reason or self._budget_exhausted()
                if t.checkpoint_every and p.step % t.checkpoint_every == 0 and not self.stop_reason:
                    self.save("last.pt")
            if p.window >= len(windows):
                p.epoch += 1
                p.window = 0
                self.anchor_state = None
                if p.epoch < t.max_epochs and self.stop_reason is None:
                    inputs, targets, windows = self._epoch_streams(p.epoch)
        bar.close()
        self.stop_reason = self.stop_reason or f"reached trainer.max_epochs={t.max_epochs}"
        log.info("stopping: %s", self.stop_reason)
        self.save("last.pt")
        if p.last_eval_step != p.step or self.last_metrics is None:
            self._after_eval(self.evaluate())
        final = self.last_metrics
        clip = self.clip_report()
        log.info("%s", clip)
        self._log(
            {
                "step": p.step,
                "epoch": p.epoch,
                "event": "end",
                "valid_bpc": final["valid_bpc"],
                "best_bpc": p.best_bpc,
                "clip_norm": self.clip_norm,
                "clip_events_total": p.clip_events,
                "updates_total": p.updates,
                "stop_reason": self.stop_reason,
            }
        )
        log.info("held-out bits per character: %.4f (best %.4f)", final["valid_bpc"], p.best_bpc)
        if show_table:
            self._show_table(f"after {p.step} updates")
        if self.stop_reason.startswith("received"):
            log.warning("interrupted; resume with: trainer.resume=%s", self.ckpt_dir / "last.pt")
        return {
            "step": p.step,
            "epoch": p.epoch,
            "valid_bpc": final["valid_bpc"],
            "best_bpc": p.best_bpc,
            "clip_events": p.clip_events,
            "updates": p.updates,
            "stop_reason": self.stop_reason,
        }


def train_lm(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train a character LM into run_dir (task: lm); returns a summary."""
    return LMTrainer(cfg, Path(run_dir)).train()
