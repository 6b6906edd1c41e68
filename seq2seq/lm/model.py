"""The character language model: embedding or one-hot input → any registered cell → vocabulary."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from seq2seq import registry
from seq2seq.checkpoint import CheckpointError, load_checkpoint
from seq2seq.lm.data import CharVocab
from seq2seq.nn.dropout import SequenceDropout
from seq2seq.nn.initialization import initialize
from seq2seq.nn.recurrent import RecurrentStack, State

LN2 = math.log(2.0)


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
        self.dropout = SequenceDropout(spec.dropout)
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
