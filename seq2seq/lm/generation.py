"""Text generation from the character language model, one character at a time."""

from __future__ import annotations

import torch

from seq2seq.lm.data import CharVocab
from seq2seq.lm.model import CharLM


def sample_text(
    model: CharLM,
    vocab: CharVocab,
    prime: str,
    length: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> str:
    """The prime followed by `length` characters drawn one at a time from the model.

    temperature 0 picks the most likely character (greedy). The unknown symbol is
    never drawn. An empty prime conditions on a newline (the start of a line) when
    the vocabulary has one, else on the first character of the vocabulary.
    """
    if length < 0:
        raise ValueError(f"--length must be >= 0, got {length}")
    if temperature < 0:
        raise ValueError(f"--temperature must be >= 0, got {temperature}")
    context = prime or ("\n" if "\n" in vocab.index else vocab.chars[0])
    ids = vocab.encode(context)
    device = model.output.weight.device
    model.eval()
    out: list[int] = []
    with torch.inference_mode():
        logits, state = model(torch.tensor([ids], device=device))
        last = logits[0, -1]
        for _ in range(length):
            last = last.float().clone()
            if vocab.unk_id is not None and len(vocab) > 1:
                last[vocab.unk_id] = -float("inf")
            if temperature == 0:
                nxt = int(last.argmax())
            else:
                probs = torch.softmax(last / temperature, dim=-1).cpu()
                nxt = int(torch.multinomial(probs, 1, generator=generator))
            out.append(nxt)
            logits, state = model(torch.tensor([[nxt]], device=device), state)
            last = logits[0, -1]
    return prime + vocab.decode(out)
