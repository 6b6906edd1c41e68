"""`seq2seq-bleu` with several systems and with sacreBLEU's named test sets.

Several systems: the p-values, means and confidence intervals must be sacreBLEU's own
(`sacrebleu REF -i A B C --paired-bs|--paired-ar`), for files and for checkpoints.
Named test sets: a sacreBLEU cache folder is built from real Multi30k sentences under
the file names sacreBLEU uses for wmt12 en-de; scores read through it must equal what
`sacrebleu -t wmt12 -l en-de` computes from the same cache, and a set that is missing
offline must be refused with the exact command that prepares it.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from test_bleu_cli import assert_one_error, console_script, perturb, run_bleu

from seq2seq.translation.significance import format_comparison

LINES = 300


@pytest.fixture(scope="module")
def files(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The first LINES Multi30k test sentences (en, de) and three imperfect 'systems'."""
    folder = tmp_path_factory.mktemp("compare")
    out: dict[str, Path] = {}
    for lang in ("en", "de"):
        with gzip.open(data_root / "multi30k" / f"test_2016_flickr.{lang}.gz", "rt") as f:
            lines = f.read().split("\n")[:LINES]
        out[lang] = folder / f"test.{lang}"
        out[lang].write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    refs = out["de"].read_text(encoding="utf-8").splitlines()
    for name, shift in (("a", 0), ("b", 1), ("c", 3)):
        out[name] = folder / f"{name}.de"
        hyps = [perturb(r, i + shift) if (i + shift) % 2 == 0 else r for i, r in enumerate(refs)]
        out[name].write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    return out


def sacrebleu_paired(ref: Path, hyps: list[Path], test: str) -> list[dict]:
    """sacreBLEU's own paired test, read from its text table (its JSON output cannot
    write chrF's and TER's numpy floats): per system, baseline first, {metric: {score,
    mean, ci, p_value}}."""
    proc = subprocess.run(
        [console_script("sacrebleu"), str(ref), "-i", *map(str, hyps), f"--paired-{test}"]
        + ["-m", "bleu", "chrf", "ter", "-w", "4", "--no-color", "--format", "text"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows = [line for line in proc.stdout.splitlines() if line.startswith("│")]
    cells = [[c.strip() for c in row.strip("│").split("│")] for row in rows]
    metrics = [c.split()[0] for c in cells[0][1:]]
    systems: list[dict] = []
    for row in cells[1:]:
        if row[0]:  # a system's first line: scores (and the bootstrap mean ± CI)
            systems.append({})
            for metric, cell in zip(metrics, row[1:], strict=True):
                found = re.match(r"([\d.]+)(?: \(([\d.]+) ± ([\d.]+)\))?", cell)
                score, mean, ci = (float(x) if x else None for x in found.groups())
                systems[-1][metric] = {"score": score, "mean": mean, "ci": ci, "p_value": None}
        for metric, cell in zip(metrics, row[1:], strict=True):
            p = re.search(r"p = ([\d.]+)", cell)
            if p:
                systems[-1][metric]["p_value"] = float(p.group(1))
    return systems


def assert_same_as_sacrebleu(record: dict, theirs_by_test: dict[str, list[dict]]) -> None:
    for test, theirs in theirs_by_test.items():
        assert len(theirs) == len(record["systems"])
        for ours, their in zip(record["systems"], theirs, strict=True):
            for metric in ("BLEU", "chrF2", "TER"):
                mine, truth = ours["metrics"][metric], their[metric]
                assert mine["score"] == pytest.approx(truth["score"], abs=2e-4)
                if truth["p_value"] is not None:
                    assert mine[f"p_{test}"] == pytest.approx(truth["p_value"], abs=2e-4)
                if test == "bs":
                    assert mine["mean"] == pytest.approx(truth["mean"], abs=2e-4)
                    assert mine["ci"] == pytest.approx(truth["ci"], abs=2e-4)


def test_three_files_agree_with_sacrebleu_paired_tests(files, tmp_path: Path, capsys) -> None:
    hyps = [files["a"], files["b"], files["c"]]
    table = tmp_path / "table.md"
    code, out, err = run_bleu(
        ["--hyp", *map(str, hyps), "--ref", str(files["de"]), "--json", "--table", str(table)],
        capsys,
    )
    assert code == 0, err
    record = json.loads(out)
    assert record["baseline"] == str(files["a"])
    assert [s["system"] for s in record["systems"]] == [str(h) for h in hyps]
    theirs = {t: sacrebleu_paired(files["de"], hyps, t) for t in ("bs", "ar")}
    assert_same_as_sacrebleu(record, theirs)
    # the systems really differ, and the baseline has no p-value
    scores = {s["metrics"]["BLEU"]["score"] for s in record["systems"]}
    assert len(scores) == 3
    assert "p_bs" not in record["systems"][0]["metrics"]["BLEU"]

    markdown = table.read_text(encoding="utf-8")
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 3  # the header and its rule, then one row per system
    assert f"Baseline: {files['a']}" in rows[2]
    p = record["systems"][2]["metrics"]["BLEU"]["p_bs"]
    assert f"p(bs) = {p:.4f}" in rows[4]
    # the text the command prints names each system and its p-values
    code, out, _ = run_bleu(["--hyp", *map(str, hyps), "--ref", str(files["de"])], capsys)
    assert code == 0
    assert out.splitlines()[1:] == format_comparison(record).splitlines()
    assert str(files["c"]) in out and "p(ar) = " in out


def test_paired_choice_and_scores_only(files, capsys) -> None:
    hyps = [str(files["a"]), str(files["b"])]
    code, out, _ = run_bleu(
        ["--hyp", *hyps, "--ref", str(files["de"]), "--json", "--paired", "ar"], capsys
    )
    assert code == 0
    record = json.loads(out)
    assert list(record["tests"]) == ["ar"]
    assert "p_ar" in record["systems"][1]["metrics"]["chrF2"]
    assert "p_bs" not in record["systems"][1]["metrics"]["chrF2"]
    code, out, _ = run_bleu(
        ["--hyp", *hyps, "--ref", str(files["de"]), "--json", "--paired", "none"], capsys
    )
    record = json.loads(out)
    assert code == 0 and record["tests"] == {}
    assert set(record["systems"][1]["metrics"]["BLEU"]) == {"score"}


def test_three_checkpoints_compared(fixed_run, attention_run, files, capsys, tmp_path) -> None:
    """Three models of one pair, each translating the same file; the first is the baseline.
    The p-values equal sacreBLEU's on the translations the command wrote out."""
    checkpoints = [
        str(fixed_run / "checkpoints" / "best.pt"),
        str(attention_run / "checkpoints" / "best.pt"),
        str(fixed_run / "checkpoints" / "last.pt"),
    ]
    code, out, err = run_bleu(
        ["--checkpoint", *checkpoints, "--src", str(files["en"]), "--ref", str(files["de"])]
        + ["--json", "--paired", "bs", "--batch-size", "100", "-o", str(tmp_path / "out")],
        capsys,
    )
    assert code == 0, err
    record = json.loads(out)
    assert [s["system"] for s in record["systems"]] == checkpoints
    assert all(s["translate_seconds"] > 0 for s in record["systems"])
    assert record["decoding"]["search"] == "greedy"
    written = [tmp_path / "out" / f"{n}.txt" for n in (1, 2, 3)]
    assert_same_as_sacrebleu(record, {"bs": sacrebleu_paired(files["de"], written, "bs")})


def test_ensemble_is_one_system(fixed_run, files, capsys, tmp_path: Path) -> None:
    a = str(fixed_run / "checkpoints" / "best.pt")
    b = str(fixed_run / "checkpoints" / "last.pt")
    out_file = tmp_path / "ensemble.de"
    code, out, err = run_bleu(
        ["--checkpoint", a, b, "--ensemble", "--src", str(files["en"]), "--ref", str(files["de"])]
        + ["--json", "-o", str(out_file)],
        capsys,
    )
    assert code == 0, err
    record = json.loads(out)
    assert record["checkpoint"] == [a, b]
    assert len(out_file.read_text(encoding="utf-8").splitlines()) == LINES


def write_cache(root: Path, testset: str, langpair: str, src: list[str], ref: list[str]) -> None:
    """The files sacreBLEU's FakeSGML datasets leave in $SACREBLEU/<set>/ once prepared."""
    folder = root / testset
    folder.mkdir(parents=True)
    fields = {
        "src": src,
        "ref": ref,
        "docid": [f"doc{i // 10}" for i in range(len(src))],
        "genre": ["news"] * len(src),
        "origlang": [langpair[:2]] * len(src),
    }
    for field, lines in fields.items():
        path = folder / f"{testset}.{langpair}.{field}"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@pytest.fixture
def sacrebleu_cache(files, tmp_path: Path, monkeypatch) -> Path:
    """A sacreBLEU cache holding 'wmt12 en-de' made of real Multi30k sentences; the
    commands run in subprocesses (sacreBLEU reads $SACREBLEU when imported)."""
    root = tmp_path / "sacrebleu"
    src = files["en"].read_text(encoding="utf-8").splitlines()
    ref = files["de"].read_text(encoding="utf-8").splitlines()
    write_cache(root, "wmt12", "en-de", src, ref)
    monkeypatch.setenv("SACREBLEU", str(root))
    monkeypatch.setenv("SEQ2SEQ_OFFLINE", "1")
    return root


def bleu_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [console_script("seq2seq-bleu"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )


def test_named_test_set_from_cache_matches_sacrebleu(sacrebleu_cache, files) -> None:
    proc = bleu_process("--hyp", str(files["b"]), "--testset", "wmt12", "--langpair", "en-de")
    assert proc.returncode == 0, proc.stderr
    ours = dict(line.split(" = ", 1) for line in proc.stdout.splitlines() if " = " in line)
    theirs = subprocess.run(
        [console_script("sacrebleu"), "-t", "wmt12", "-l", "en-de", "-i", str(files["b"])]
        + ["-m", "bleu", "chrf", "ter", "--format", "json", "-w", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    for result in json.loads(theirs.stdout):
        assert ours[result["name"]].split()[0] == f"{result['score']:.2f}"


def test_named_test_set_with_a_checkpoint(sacrebleu_cache, fixed_run) -> None:
    checkpoint = str(fixed_run / "checkpoints" / "best.pt")
    proc = bleu_process("--checkpoint", checkpoint, "--testset", "wmt12", "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["test_set"] == "wmt12 en-de"  # the pair is the model's
    assert record["sentences"] == LINES
    proc = bleu_process("--checkpoint", checkpoint, "--testset", "wmt12", "--langpair", "en-fr")
    assert proc.returncode != 0
    assert_one_error(proc.stderr, "en-fr", "en-de")


def test_missing_test_set_names_the_command(sacrebleu_cache, files) -> None:
    proc = bleu_process("--hyp", str(files["a"]), "--testset", "wmt13", "--langpair", "en-es")
    assert proc.returncode != 0 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert f"SACREBLEU={sacrebleu_cache} sacrebleu --download wmt13 -l en-es" in proc.stderr
    proc = bleu_process("--hyp", str(files["a"]), "--testset", "wmt31", "--langpair", "en-de")
    assert_one_error(proc.stderr, "wmt31", "did you mean")
    proc = bleu_process("--hyp", str(files["a"]), "--testset", "wmt12", "--langpair", "en-xx")
    assert_one_error(proc.stderr, "en-xx", "en-de")


def test_contradictory_flags(files, capsys) -> None:
    a, ref = str(files["a"]), str(files["de"])
    for argv, words in (
        (["--hyp", a, "--ref", ref, "--testset", "wmt12"], "--testset"),
        (["--hyp", a, "--testset", "wmt12"], "--langpair"),
        (["--hyp", a, "--ref", ref, "--ensemble"], "--ensemble"),
        (["--hyp", a, a, "--ref", ref, "-o", "x"], "-o"),
        (["--checkpoint", "x.pt", "--langpair", "en-de"], "--langpair"),
    ):
        code, out, err = run_bleu(argv, capsys)
        assert code == 2 and out == "", argv
        assert words in err and "Traceback" not in err
