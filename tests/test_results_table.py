"""data_scripts/results_table.py carries on where it stopped: a recipe already trained
and a test set already scored are not redone, and the table shows what the records say.

The runs here are folders as the trainer and `seq2seq-bleu --record` leave them (no
training happens); the out-of-domain sets come from the real en_es corpora.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "data_scripts" / "results_table.py"


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("results_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def finished_run(folder: Path, corpus: str, src: str, tgt: str, records: list[dict]) -> None:
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "averaged.pt").write_bytes(b"")
    config = f"data:\n  corpus: {corpus}\n  src_lang: {src}\n  tgt_lang: {tgt}\n"
    (folder / "config.yaml").write_text(config, encoding="utf-8")
    summary = {"stop_reason": "reached trainer.max_time=12.0 minutes", "updates": 1925}
    (folder / "summary.json").write_text(json.dumps({**summary, "wall_s": 733.8}))
    lines = "".join(json.dumps(r) + "\n" for r in records)
    (folder / "results.jsonl").write_text(lines, encoding="utf-8")


def record(test_set: str, bleu: float, chrf: float) -> dict:
    return {"test_set": test_set, "metrics": {"BLEU": {"score": bleu}, "chrF2": {"score": chrf}}}


def test_finished_runs_are_read_not_redone(table, tmp_path: Path, data_root: Path, monkeypatch):
    out = tmp_path / "results"
    finished_run(
        out / "en_fr", "multi30k", "en", "fr", [record("multi30k:test en-fr", 50.12, 70.5)]
    )
    ood = table.out_of_domain("en_es", data_root, out)
    assert [name for name, _, _ in ood] == ["newstest2012", "europarl (first 2000)"]
    europarl = ood[1][1].read_text(encoding="utf-8").splitlines()
    assert len(europarl) == 2000 and all(europarl[:10])
    en_es = [record("tatoeba_en_es:test en-es", 35.0, 56.7)]
    en_es += [record(f"{src} -> {ref}", 9.5 + i, 30.0 + i) for i, (_, src, ref) in enumerate(ood)]
    finished_run(out / "en_es", "tatoeba_en_es", "en", "es", en_es)

    def no_process(command, log=None):
        raise AssertionError(f"nothing should run: {command}")

    monkeypatch.setattr(table, "run", no_process)
    assert table.main(["--recipes", "en_fr", "en_es", "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [(r["recipe"], r["test_set"], r["BLEU"]) for r in rows] == [
        ("en_fr", "multi30k test", 50.12),
        ("en_es", "tatoeba_en_es test", 35.0),
        ("en_es", "newstest2012", 9.5),
        ("en_es", "europarl (first 2000)", 10.5),
    ]
    markdown = (out / "results.md").read_text(encoding="utf-8")
    assert "| `en_fr` | multi30k test | 50.12 | 70.50 | 1,925 | 12.2 min |" in markdown
    assert "`python -m seq2seq.train +exp=en_fr trainer.max_time=12`" in markdown


def test_a_missing_score_is_computed(table, tmp_path: Path, monkeypatch):
    """A run without its test record gets exactly one seq2seq-bleu call, with --record."""
    out = tmp_path / "results"
    finished_run(out / "de_en", "multi30k", "de", "en", [])
    calls = []

    def fake_bleu(command, log=None):
        calls.append(command)
        records = Path(command[command.index("--record") + 1])
        records.write_text(json.dumps(record("multi30k:test de-en", 40.0, 60.0)) + "\n")

    monkeypatch.setattr(table, "run", fake_bleu)
    table.main(["--recipes", "de_en", "--out", str(out)])
    assert len(calls) == 1 and "--split" in calls[0] and "beam" in calls[0]
    assert str(out / "de_en" / "checkpoints" / "averaged.pt") in calls[0]
