#!/usr/bin/env python
"""Train every listed recipe for the same wall-clock budget, score each on its test
sets, and write the results table (Markdown and JSON).

    python data_scripts/results_table.py                         # all recipes, 12 minutes each
    python data_scripts/results_table.py --recipes en_fr de_en --minutes 30 --out results-30

Each recipe trains with `python -m seq2seq.train +exp=RECIPE trainer.max_time=MINUTES`
into OUT/RECIPE, one after the other (never two at once: they would share the cores and
the budget would mean less). Its averaged checkpoint (else best.pt) then translates each
of its test sets with beam 5, scored by `seq2seq-bleu --record OUT/RECIPE/results.jsonl`.
A recipe already trained, or a test set already scored, is not redone: rerunning after
an interruption carries on. Rows give BLEU, chrF, updates, wall time and the commands.

Test sets: the corpus's test split for every recipe; for `en_es` also two out-of-domain
sets in SEQ2SEQ_DATA/en_es (WMT newstest2012 and the first 2,000 lines of the Europarl
sample), to show how a model trained on short Tatoeba sentences fares on news and
parliament text.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

RECIPES = ["en_de", "en_fr", "en_cs", "de_en", "en_es", "en_de_fixed"]
CHECKPOINTS = ("checkpoints/averaged.pt", "checkpoints/best.pt")
EUROPARL_LINES = 2000


def out_of_domain(recipe: str, data: Path, out: Path) -> list[tuple[str, Path, Path]]:
    """(name, source file, reference file) of the recipe's extra test sets."""
    if recipe != "en_es":
        return []
    sets = [
        (
            "newstest2012",
            data / "en_es/newstest2012.dev.en.gz",
            data / "en_es/newstest2012.dev.es.gz",
        )
    ]
    folder = out / "testsets"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for lang in ("en", "es"):
        target = folder / f"europarl-{EUROPARL_LINES}.{lang}"
        if not target.is_file():
            from seq2seq.data.reading import read_lines

            lines = read_lines(data / f"en_es/europarl-v7-sample20k-tok.all.{lang}.gz")
            target.write_text("".join(f"{line}\n" for line in lines[:EUROPARL_LINES]), "utf-8")
        files.append(target)
    sets.append((f"europarl (first {EUROPARL_LINES})", *files))
    return sets


def run(command: list[str], log: Path | None = None) -> None:
    print("$", shlex.join(command), flush=True)
    if log is None:
        subprocess.run(command, check=True)
        return
    with open(log, "a", encoding="utf-8") as f:
        subprocess.run(command, check=True, stdout=f, stderr=subprocess.STDOUT)


def train(recipe: str, minutes: float, run_dir: Path) -> list[str]:
    command = [
        "python",
        "-m",
        "seq2seq.train",
        f"+exp={recipe}",
        f"trainer.max_time={minutes:g}",
    ]
    summary = run_dir / "summary.json"
    if summary.is_file() and "error" not in json.loads(summary.read_text())["stop_reason"]:
        print(f"{recipe}: already trained ({summary})", flush=True)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        full = [sys.executable, *command[1:], f"hydra.run.dir={run_dir}"]
        run(full, run_dir.parent / f"{recipe}.log")
    return command


def scored(records: Path) -> dict[str, dict]:
    """The records already in RUN/results.jsonl, by test set."""
    if not records.is_file():
        return {}
    found = [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines()]
    return {r["test_set"]: r for r in found if "test_set" in r}


def test_sets(
    recipe: str, run_dir: Path, data: Path, out: Path
) -> list[tuple[str, str, list[str]]]:
    """(name in the table, name seq2seq-bleu records, its flags) for each test set."""
    import yaml

    corpus = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))["data"]
    split = f"{corpus['corpus']}:test {corpus['src_lang']}-{corpus['tgt_lang']}"
    found = [(f"{corpus['corpus']} test", split, ["--split", "test", "--data-root", str(data)])]
    for name, src, ref in out_of_domain(recipe, data, out):
        found.append((name, f"{src} -> {ref}", ["--src", str(src), "--ref", str(ref)]))
    return found


def score(recipe: str, run_dir: Path, data: Path, out: Path) -> list[dict]:
    """One row per test set of the recipe, scoring only what is not scored yet."""
    checkpoint = next(run_dir / c for c in CHECKPOINTS if (run_dir / c).is_file())
    records = run_dir / "results.jsonl"
    base = ["seq2seq-bleu", "--checkpoint", str(checkpoint), "--search", "beam"]
    rows = []
    for name, key, flags in test_sets(recipe, run_dir, data, out):
        if key not in scored(records):
            bleu = [sys.executable, "-m", "seq2seq.commands.bleu", *base[1:], *flags]
            run([*bleu, "--record", str(records)])
        record = scored(records)[key]
        rows.append(
            {
                "test_set": name,
                "checkpoint": str(checkpoint),
                "score_command": shlex.join(base + flags),
                "BLEU": record["metrics"]["BLEU"]["score"],
                "chrF2": record["metrics"]["chrF2"]["score"],
            }
        )
    return rows


def markdown(rows: list[dict], cpu: str, minutes: float) -> str:
    lines = [
        f"Each recipe trained for {minutes:g} minutes on {cpu}; beam 5, averaged checkpoint "
        "(best.pt where there is none); sacreBLEU BLEU and chrF2.",
        "",
        "| recipe | test set | BLEU | chrF2 | updates | wall | train | score |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| `{r['recipe']}` | {r['test_set']} | {r['BLEU']:.2f} | {r['chrF2']:.2f} | "
            f"{r['updates']:,} | {r['wall_s'] / 60:.1f} min | `{r['train_command']}` | "
            f"`{r['score_command']}` |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", default=RECIPES, help="conf/exp recipes")
    parser.add_argument("--minutes", type=float, default=12, help="training budget per recipe")
    parser.add_argument("--out", type=Path, default=Path("results"), help="runs and tables")
    parser.add_argument(
        "--data-root", type=Path, help="corpora (default: $SEQ2SEQ_DATA, else data)"
    )
    args = parser.parse_args(argv)
    env = os.environ.get("SEQ2SEQ_DATA")
    data_root = (args.data_root or Path(env or "data")).resolve()
    shown_root = str(args.data_root) if args.data_root else ("$SEQ2SEQ_DATA" if env else "data")
    from seq2seq.hardware import cpu_description

    out = args.out.resolve()
    rows = []
    for recipe in args.recipes:
        run_dir = out / recipe
        command = train(recipe, args.minutes, run_dir)
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        for row in score(recipe, run_dir, data_root, out):
            # the command as the user would type it: the folders as they were given
            shown = row["score_command"].replace(str(out), str(args.out))
            row["score_command"] = shown.replace(str(data_root), shown_root)
            rows.append(
                {
                    "recipe": recipe,
                    "updates": summary["updates"],
                    "wall_s": summary["wall_s"],
                    "train_command": shlex.join(command),
                    **row,
                }
            )
    table = markdown(rows, cpu_description(), args.minutes)
    (out / "results.md").write_text(table, encoding="utf-8")
    (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(table)
    print(f"written: {out / 'results.md'}, {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
