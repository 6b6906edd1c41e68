"""Corpus-level scores of translations, with the sacreBLEU signatures that make them
comparable across papers and toolkits."""

from __future__ import annotations

from typing import Any

from sacrebleu.metrics import BLEU, CHRF, TER


def corpus_scores(hyps: list[str], refs: list[list[str]]) -> dict[str, dict[str, Any]]:
    """BLEU, chrF and TER with their signatures (sacreBLEU defaults: cased, 13a).

    `refs` is a list of reference streams, each with one line per hypothesis.
    """
    for ref in refs:
        if len(ref) != len(hyps):
            raise ValueError(f"{len(hyps)} hypotheses but {len(ref)} reference lines")
    if not hyps:
        raise ValueError("nothing to score: no hypothesis lines")
    results = {}
    for metric in (BLEU(), CHRF(), TER()):
        result = metric.corpus_score(hyps, refs)
        results[result.name] = {
            "score": round(result.score, 4),
            "signature": f"{result.name}|{metric.get_signature()}",
            "text": str(result),
        }
    return results
