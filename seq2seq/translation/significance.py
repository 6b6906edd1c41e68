"""Several systems on one test set: BLEU, chrF and TER of each, and whether each
differs from the first (the baseline) by more than chance, with sacreBLEU's paired
bootstrap resampling (Koehn 2004) and approximate randomisation (Riezler & Maxwell
2005). The numbers are sacreBLEU's own (its seed, `SACREBLEU_SEED`, default 12345), so
`sacrebleu REF -i A B C --paired-bs` run directly prints the same ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sacrebleu.metrics import BLEU, CHRF, TER

#: the paired tests, by the name sacreBLEU's PairedTest gives them
TESTS = {"bs": "paired bootstrap resampling", "ar": "approximate randomisation"}
SIGNIFICANT = 0.05


def _metrics() -> dict[str, Any]:
    return {"BLEU": BLEU(), "chrF2": CHRF(), "TER": TER()}


def compare_systems(
    systems: Sequence[tuple[str, Sequence[str]]],
    refs: Sequence[Sequence[str]],
    tests: Sequence[str] = ("bs", "ar"),
    bs_samples: int = 1000,
    ar_trials: int = 10000,
) -> dict[str, Any]:
    """One record per system, baseline first: for each metric its score, the bootstrap
    mean and 95% confidence interval, and (other systems) the p-value of each test.

    `systems` are (name, hypotheses); every hypothesis list and every reference stream
    has one line per test sentence.
    """
    import logging

    from sacrebleu.significance import PairedTest

    logging.getLogger("sacrebleu").setLevel(logging.WARNING)  # its per-step INFO lines

    if len(systems) < 2:
        raise ValueError("a comparison needs at least two systems")
    unknown = [t for t in tests if t not in TESTS]
    if unknown:
        raise ValueError(f"unknown test(s) {unknown}; available: {', '.join(TESTS)}")
    records: list[dict[str, Any]] = [{"system": name, "metrics": {}} for name, _ in systems]
    signatures: dict[str, dict[str, str]] = {}
    for test in tests:
        paired = PairedTest(
            [(name, list(hyps)) for name, hyps in systems],
            _metrics(),
            references=[list(r) for r in refs],
            test_type=test,
            n_samples=bs_samples if test == "bs" else ar_trials,
        )
        test_signatures, scores = paired()
        for metric, results in scores.items():
            if metric == "System":
                continue
            signatures.setdefault(metric, {})[test] = f"{metric}|{test_signatures[metric]}"
            for record, result in zip(records, results, strict=True):
                entry = record["metrics"].setdefault(
                    metric, {"score": round(float(result.score), 4)}
                )
                if result.mean is not None:  # the bootstrap's estimate (bs, and ar's CI)
                    entry.setdefault("mean", round(float(result.mean), 4))
                    entry.setdefault("ci", round(float(result.ci), 4))
                if result.p_value is not None:
                    entry[f"p_{test}"] = round(float(result.p_value), 4)
    return {
        "baseline": systems[0][0],
        "tests": {t: TESTS[t] for t in tests},
        "samples": {t: bs_samples if t == "bs" else ar_trials for t in tests},
        "systems": records,
        "signatures": signatures,
    }


def _cell(entry: dict[str, Any], tests: Sequence[str], markdown: bool) -> str:
    text = f"{entry['score']:.2f}"
    if "mean" in entry:
        text += f" ({entry['mean']:.2f} ± {entry['ci']:.2f})"
    for test in tests:
        p = entry.get(f"p_{test}")
        if p is not None:
            star = ("\\*" if markdown else "*") if p < SIGNIFICANT else ""
            label = f"p({test})" if len(tests) > 1 else "p"
            text += f" {label} = {p:.4f}{star}"
    return text


def format_comparison(comparison: dict[str, Any], markdown: bool = False) -> str:
    """The comparison as sacreBLEU prints it (score, bootstrap mean ± 95% CI, p-values;
    `*`: significantly different from the baseline at p < 0.05), one line per system, or
    as a Markdown table."""
    tests = list(comparison["tests"])
    metrics = list(comparison["systems"][0]["metrics"])
    lines = []
    if markdown:
        lines.append("| system | " + " | ".join(f"{m} (μ ± 95% CI)" for m in metrics) + " |")
        lines.append("| --- " * (len(metrics) + 1) + "|")
    for index, record in enumerate(comparison["systems"]):
        name = ("Baseline: " if index == 0 else "") + record["system"]
        cells = [_cell(record["metrics"][m], tests, markdown) for m in metrics]
        if markdown:
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        else:
            lines.append(name)
            lines.extend(f"  {m:6} {c}" for m, c in zip(metrics, cells, strict=True))
    described = " and ".join(
        f"{TESTS[t]} ({comparison['samples'][t]} {'resamples' if t == 'bs' else 'trials'})"
        for t in tests
    )
    lines.append("")
    if tests:
        lines.append(
            f"Each system against the baseline by {described}; * p < {SIGNIFICANT}: the "
            "difference is unlikely to be chance."
        )
    else:
        lines.append("Scores only: no significance test was asked for.")
    for by_test in comparison["signatures"].values():
        for signature in by_test.values():
            lines.append(f"  signature: {signature}")
    return "\n".join(lines)
