"""`seq2seq-bleu`: the same numbers as the sacreBLEU command line, JSONL records, clear errors.

References are the real Multi30k test_2016_flickr German captions; hypotheses are a
deterministic perturbation of them (a non-trivial BLEU) and the output of a tiny
model trained on real Multi30k (the session's fixed_run).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seq.commands.bleu import main as bleu_main

METRICS = ("BLEU", "chrF2", "TER")


@pytest.fixture(scope="module")
def checkpoint(fixed_run: Path, one_thread) -> Path:
    """A tiny model (threads only add overhead and contention: one for this module)."""
    path = fixed_run / "checkpoints" / "best.pt"
    assert path.is_file()
    return path


def perturb(line: str, i: int) -> str:
    """A plausible imperfect translation: words dropped, swapped, changed, case changed."""
    words = line.split()
    if i % 3 == 0 and len(words) > 3:
        del words[len(words) // 2]
    if i % 4 == 1 and len(words) > 2:
        words[0], words[1] = words[1], words[0]
    if i % 5 == 2:
        words = [w.lower() for w in words]
    if i % 7 == 3:
        words.append("hier")
    return " ".join(words)


@pytest.fixture(scope="module")
def test_set(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Multi30k test_2016_flickr en/de as plain files, a perturbed reference, 200-line heads."""
    folder = tmp_path_factory.mktemp("bleu_data")
    files = {}
    for lang in ("en", "de"):
        with gzip.open(data_root / "multi30k" / f"test_2016_flickr.{lang}.gz", "rb") as f:
            data = f.read()
        files[lang] = folder / f"test.{lang}"
        files[lang].write_bytes(data)
        files[f"head.{lang}"] = folder / f"head.{lang}"
        files[f"head.{lang}"].write_bytes(b"".join(data.splitlines(keepends=True)[:200]))
    refs = files["de"].read_text(encoding="utf-8").split("\n")[:-1]
    assert len(refs) == 1000
    files["perturbed"] = folder / "perturbed.de"
    files["perturbed"].write_text(
        "".join(perturb(r, i) + "\n" for i, r in enumerate(refs)), encoding="utf-8"
    )
    return files


def run_bleu(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        bleu_main(args)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def parse_printed(out: str) -> dict[str, tuple[str, str]]:
    """{metric: (score as printed, signature)} from seq2seq-bleu's output."""
    scores = dict(re.findall(r"^(BLEU|chrF2|TER) = (\d+\.\d+)", out, flags=re.M))
    found = re.findall(r"^\s+signature: ((BLEU|chrF2|TER)\|\S+)$", out, flags=re.M)
    signatures = {name: sig for sig, name in found}
    assert set(scores) == set(METRICS) == set(signatures), out
    return {m: (scores[m], signatures[m]) for m in METRICS}


def console_script(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"console script {name} is not installed"
    return found


def sacrebleu_cli(ref: Path, hyp: Path) -> dict[str, dict]:
    """`sacrebleu REF -i HYP -m bleu chrf ter -w 2 --format json`, by metric name."""
    proc = subprocess.run(
        [
            console_script("sacrebleu"),
            str(ref),
            "-i",
            str(hyp),
            "-m",
            "bleu",
            "chrf",
            "ter",
            "-w",
            "2",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {r["name"]: r for r in json.loads(proc.stdout)}


def assert_same_as_sacrebleu(printed: dict[str, tuple[str, str]], ref: Path, hyp: Path) -> None:
    theirs = sacrebleu_cli(ref, hyp)
    for metric in METRICS:
        score, signature = printed[metric]
        assert score == f"{theirs[metric]['score']:.2f}", (metric, score, theirs[metric])
        assert signature == f"{metric}|{theirs[metric]['signature']}"


def test_hyp_ref_matches_sacrebleu_cli(test_set, tmp_path: Path, capsys) -> None:
    record_file = tmp_path / "scores.jsonl"
    code, out, err = run_bleu(
        [
            "--hyp",
            str(test_set["perturbed"]),
            "--ref",
            str(test_set["de"]),
            "--record",
            str(record_file),
        ],
        capsys,
    )
    assert code == 0, err
    printed = parse_printed(out)
    assert 20 < float(printed["BLEU"][0]) < 95  # a score where a difference would show
    assert_same_as_sacrebleu(printed, test_set["de"], test_set["perturbed"])
    (record,) = [json.loads(line) for line in record_file.read_text().splitlines()]
    assert record["hyp"] == str(test_set["perturbed"])
    for metric in METRICS:
        assert abs(record["metrics"][metric]["score"] - float(printed[metric][0])) <= 0.005
        assert record["metrics"][metric]["signature"] == printed[metric][1]


def test_checkpoint_src_ref_appends_json_records(
    checkpoint: Path, test_set, tmp_path: Path, capsys
) -> None:
    records = tmp_path / "results" / "bleu.jsonl"
    hyp = tmp_path / "model.de"
    src, ref = test_set["en"], test_set["de"]
    code, out, err = run_bleu(
        [
            "--checkpoint",
            str(checkpoint),
            "--src",
            str(src),
            "--ref",
            str(ref),
            "--record",
            str(records),
            "--output",
            str(hyp),
        ],
        capsys,
    )
    assert code == 0, err
    greedy = parse_printed(out)
    head_src, head_ref = test_set["head.en"], test_set["head.de"]
    code, out, err = run_bleu(
        [
            "--checkpoint",
            str(checkpoint),
            "--src",
            str(head_src),
            "--ref",
            str(head_ref),
            "--record",
            str(records),
            "--search",
            "beam",
            "--beam-size",
            "2",
            "--max-length",
            "30",
        ],
        capsys,
    )
    assert code == 0, err
    beam = parse_printed(out)

    lines = records.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2, "each call appends exactly one record"
    first, second = (json.loads(line) for line in lines)
    for record, printed, (s, r), n in (
        (first, greedy, (src, ref), 1000),
        (second, beam, (head_src, head_ref), 200),
    ):
        assert record["checkpoint"] == str(checkpoint)
        assert str(s) in record["test_set"] and str(r) in record["test_set"]
        assert record["sentences"] == n
        assert set(record["metrics"]) == set(METRICS)
        for metric in METRICS:
            entry = record["metrics"][metric]
            assert isinstance(entry["score"], float)
            assert abs(entry["score"] - float(printed[metric][0])) <= 0.005
            assert entry["signature"] == printed[metric][1]
            assert entry["signature"].startswith(f"{metric}|nrefs:1|")
    assert first["decoding"]["search"] == "greedy"
    assert first["decoding"]["max_length"] == 200
    assert second["decoding"]["search"] == "beam"
    assert second["decoding"]["beam_size"] == 2
    assert second["decoding"]["max_length"] == 30

    # The translations written with --output: one per source line, and the printed
    # scores are those of the sacreBLEU command line on that file.
    assert hyp.read_text(encoding="utf-8").count("\n") == 1000
    assert_same_as_sacrebleu(greedy, ref, hyp)
    code, out, err = run_bleu(["--hyp", str(hyp), "--ref", str(ref)], capsys)
    assert code == 0, err
    assert parse_printed(out) == greedy
    assert len(records.read_text(encoding="utf-8").splitlines()) == 2  # no --record, no record


# ---------------------------------------------------------------- errors


def assert_one_error(err: str, *names: object) -> None:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    for name in names:
        assert str(name) in errors[0], errors[0]


def test_mismatched_line_counts_subprocess(test_set, tmp_path: Path) -> None:
    short = tmp_path / "short.de"
    short.write_bytes(b"".join(test_set["perturbed"].read_bytes().splitlines(keepends=True)[:999]))
    proc = subprocess.run(
        [console_script("seq2seq-bleu"), "--hyp", str(short), "--ref", str(test_set["de"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert_one_error(proc.stderr, short, test_set["de"], "999", "1000")


def test_mismatched_src_ref_fails_before_translating(checkpoint, test_set, capsys) -> None:
    src, ref = test_set["head.en"], test_set["de"]
    code, out, err = run_bleu(
        ["--checkpoint", str(checkpoint), "--src", str(src), "--ref", str(ref)], capsys
    )
    assert code == 2 and out == ""
    assert_one_error(err, src, ref)


def test_missing_files(checkpoint, test_set, tmp_path: Path, capsys) -> None:
    missing = tmp_path / "missing.de"
    code, _, err = run_bleu(["--hyp", str(test_set["de"]), "--ref", str(missing)], capsys)
    assert code == 2
    assert_one_error(err, missing)
    code, _, err = run_bleu(["--hyp", str(missing), "--ref", str(test_set["de"])], capsys)
    assert code == 2
    assert_one_error(err, missing)
    missing_ckpt = tmp_path / "nowhere" / "best.pt"
    args = ["--src", str(test_set["head.en"]), "--ref", str(test_set["head.de"])]
    code, _, err = run_bleu(["--checkpoint", str(missing_ckpt), *args], capsys)
    assert code == 2
    assert_one_error(err, missing_ckpt)


def test_corrupted_checkpoint(checkpoint: Path, test_set, tmp_path: Path, capsys) -> None:
    broken = tmp_path / "truncated.pt"
    broken.write_bytes(checkpoint.read_bytes()[:4096])
    args = ["--src", str(test_set["head.en"]), "--ref", str(test_set["head.de"])]
    code, out, err = run_bleu(["--checkpoint", str(broken), *args], capsys)
    assert code == 2 and out == ""
    assert_one_error(err, broken)


def test_empty_hypothesis_file(test_set, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.de"
    empty.write_bytes(b"")
    code, _, err = run_bleu(["--hyp", str(empty), "--ref", str(test_set["de"])], capsys)
    assert code == 2
    assert_one_error(err, empty)
