"""Dev evaluation: the translation dev scores, and the bookkeeping of every trainer's
evaluations (best scores, early stopping)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sacrebleu
import torch

from seq2seq.data.batching import make_batch, token_batches
from seq2seq.data.pipeline import PreparedData, TokenizedCorpus
from seq2seq.nn.model import Seq2Seq
from seq2seq.nn.output_loss import token_loss
from seq2seq.translation.translator import Translator

# Scores tracked in summary.json, and whether higher is better.
HIGHER_IS_BETTER = {
    "dev_bleu": True,
    "dev_chrf": True,
    "dev_loss": False,
    "dev_ppl": False,
    "valid_bpc": False,
    "valid_loss": False,
}


def is_better(metric: str, score: float, best: float | None) -> bool:
    if best is None:
        return True
    return score > best if HIGHER_IS_BETTER[metric] else score < best


@dataclass
class Scoreboard:
    """Which evaluation was best, and when patience runs out. The state lives in the
    run's progress (saved in every checkpoint), so a resume continues it."""

    metric: str  # the score that picks best.pt and drives early stopping
    patience: int | None  # evaluations without improvement before stopping; 0/None: never

    def record(self, progress: Any, metrics: dict[str, float]) -> bool:
        """Note one evaluation at progress.step; returns whether it is the best so far."""
        progress.last_eval_step = progress.step
        for name, value in metrics.items():
            best = progress.best.get(name)
            if name in HIGHER_IS_BETTER and is_better(name, value, best and best["value"]):
                progress.best[name] = {"value": value, "step": progress.step}
        better = is_better(self.metric, metrics[self.metric], progress.best_score)
        if better:
            progress.best_score = metrics[self.metric]
        return better

    def patience_left(self, progress: Any, better: bool) -> str | None:
        """Count an evaluation of the schedule; the stop reason once patience runs out."""
        progress.evals_without_improvement = 0 if better else progress.evals_without_improvement + 1
        if self.patience and progress.evals_without_improvement >= self.patience:
            return f"early stopping: no {self.metric} improvement in {self.patience} evaluations"
        return None


def dev_loss(
    model: Seq2Seq, dev: TokenizedCorpus, batch_tokens: int, device: torch.device
) -> float:
    """Cross-entropy per target token of the dev set (teacher-forced, no smoothing)."""
    total_nll, total_tokens = 0.0, 0
    lengths = [max(len(s), len(t)) for s, t in zip(dev.src_ids, dev.tgt_ids, strict=True)]
    for indices in token_batches(lengths, lengths, batch_tokens, 0, 0, shuffle=False):
        batch = make_batch([dev.src_ids[i] for i in indices], [dev.tgt_ids[i] for i in indices])
        logits = model(batch.src.to(device), batch.src_lengths, batch.tgt_in.to(device))
        total_nll += float(token_loss(logits, batch.tgt_out.to(device)))
        total_tokens += batch.num_tokens
    return total_nll / max(total_tokens, 1)


@dataclass
class DevEvaluation:
    """One validation: its scores and the greedy translations they were computed from."""

    scores: dict[str, float]  # dev_loss, dev_ppl, dev_bleu, dev_chrf
    sources: list[str]
    references: list[str]
    hypotheses: list[str]  # one per scored dev sentence, in order


def dev_evaluation(
    model: Seq2Seq, data: PreparedData, dev_tokens: TokenizedCorpus, tcfg: Any, device
) -> DevEvaluation:
    """Dev loss and perplexity, and the BLEU and chrF of greedy translations of the first
    trainer.eval_sentences dev sentences (all when 0)."""
    model.eval()
    with torch.inference_mode():
        loss = dev_loss(model, dev_tokens, tcfg.batch_tokens, device)
    n = tcfg.eval_sentences or len(data.dev)
    sources, references = list(data.dev.src[:n]), list(data.dev.tgt[:n])
    translator = Translator(model, data.src_tokenizer, data.tgt_tokenizer)
    hyps = [
        t.text
        for t in translator.translate(
            sources, search="greedy", batch_size=128, max_length=tcfg.eval_max_length
        )
    ]
    model.train()
    scores = {
        "dev_loss": loss,
        "dev_ppl": math.exp(min(loss, 50)),
        "dev_bleu": sacrebleu.corpus_bleu(hyps, [references]).score,
        "dev_chrf": sacrebleu.corpus_chrf(hyps, [references]).score,
    }
    return DevEvaluation(scores, sources, references, list(hyps))


def dev_scores(
    model: Seq2Seq, data: PreparedData, dev_tokens: TokenizedCorpus, tcfg: Any, device
) -> dict[str, float]:
    """The scores of dev_evaluation."""
    return dev_evaluation(model, data, dev_tokens, tcfg, device).scores
