"""`seq2seq-results` on hand-made run folders and on a real joblib sweep (whose summary.json
files the trainer writes); launcher configs."""

from __future__ import annotations

import configparser
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _models import PINNED_TINY_MODEL
from hydra import compose, initialize_config_module

from seq2seq.commands import bleu, results
from seq2seq.training.summary import write_summary


def write_jsonl(path: Path, records: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")


def make_run(
    run: Path,
    summary: dict | None,
    overrides: list[str] | None = None,
    metrics: list[dict] = (),
    tail: str = "",
) -> Path:
    """A run folder as `python -m seq2seq.train` leaves it (only what the table reads)."""
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("task: translation\n", encoding="utf-8")
    if overrides is not None:
        (run / ".hydra").mkdir()
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides), encoding="utf-8")
    if summary is not None:
        write_summary(run, summary)
    if metrics or tail:
        write_jsonl(run / "metrics.jsonl", list(metrics), tail)
    return run


def summary_of(updates: int, best_bleu: float, best_step: int, **fields) -> dict:
    """A summary.json of a translation run that ended (see seq2seq.training.summary)."""
    return {
        "task": "translation",
        "stop_reason": "reached trainer.max_steps=10",
        "error": None,
        "steps": updates,
        "updates": updates,
        "skipped_updates": 0,
        "epochs": 0,
        "wall_s": 60.0,
        "final": {"dev_loss": 3.0, "dev_ppl": 20.09, "dev_bleu": best_bleu},
        "best": {"dev_bleu": {"value": best_bleu, "step": best_step}},
        "best_metric": "dev_bleu",
        "averaged": None,
        "tgt_tokens_per_s": 2000.0,
        "checkpoints": {},
        "config_sha256": "0" * 64,
        **fields,
    }


def run_results(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        results.main([*map(str, args)])
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def table_rows(out: str) -> list[dict[str, str]]:
    lines = [line for line in out.splitlines() if line.startswith("|")]
    split = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    header = split[0]
    return [dict(zip(header, cells, strict=True)) for cells in split[2:]]


@pytest.fixture
def sweep(tmp_path) -> Path:
    """A two-job Hydra sweep over model.cell; job 1 was killed mid-write of metrics.jsonl."""
    root = tmp_path / "multirun" / "2026-11-25" / "21-00-00"
    root.mkdir(parents=True)
    common = ["+exp=en_de", "trainer.max_time=12"]
    (root / "multirun.yaml").write_text(
        yaml.safe_dump(
            {"hydra": {"overrides": {"task": [*common, "model.cell=lstm,gru"]}}, "task": "x"}
        ),
        encoding="utf-8",
    )
    make_run(
        root / "0",
        summary_of(
            400,
            12.25,
            300,
            final={"dev_loss": 2.4, "dev_ppl": 11.02, "dev_bleu": 11.0},
            tgt_tokens_per_s=2625.0,
            wall_s=725.0,
            stop_reason="reached trainer.max_time=12 minutes",
        ),
        overrides=[*common, "model.cell=lstm"],
    )
    make_run(
        root / "1",
        None,
        overrides=[*common, "model.cell=gru"],
        metrics=[{"step": 100, "train_loss": 5.0}, {"step": 200, "train_loss": 4.0}],
        tail='{"step": 300, "epoch": 0, "train_lo',  # killed mid-write
    )
    return root


def test_sweep_table_one_row_per_run(sweep, capsys):
    code, out, err = run_results(capsys, sweep)
    assert code == 0, err
    rows = table_rows(out)
    assert [r["run"] for r in rows] == ["0", "1"]
    lstm, gru = rows
    assert lstm["overrides"] == "model.cell=lstm" and gru["overrides"] == "model.cell=gru"
    assert lstm["updates"] == "400" and gru["updates"] == "200"
    assert lstm["best dev BLEU"] == "12.25" and lstm["at step"] == "300"
    assert lstm["dev loss"] == "2.400"  # the last evaluation's
    assert lstm["tgt tok/s"] == "2,625"
    assert lstm["stop"] == "reached trainer.max_time=12 minutes"
    assert gru["stop"].startswith("no summary.json: still training, or killed")
    assert lstm["wall"] == "12m05s" and gru["wall"] == ""
    # the truncated last line is skipped with a warning naming the file and line
    assert f"{sweep / '1' / 'metrics.jsonl'}:3: skipped an unreadable line" in err
    # an aligned Markdown table: equal widths, numeric columns right-aligned
    lines = out.strip().splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[1].startswith("| --- |") and "---: |" in lines[1]
    assert "test BLEU" not in lines[0]  # no run has test scores: the column is left out


def test_json_sort_and_test_scores_from_seq2seq_bleu(sweep, tmp_path, capsys):
    hyp, ref = tmp_path / "hyp.de", tmp_path / "ref.de"
    hyp.write_text("ein Hund läuft im Schnee .\nzwei Männer\n", encoding="utf-8")
    ref.write_text("ein Hund läuft im Schnee .\nzwei Frauen\n", encoding="utf-8")
    results_file = sweep / "1" / "results.jsonl"
    assert bleu._main(["--hyp", str(hyp), "--ref", str(ref), "--record", str(results_file)]) == 0
    capsys.readouterr()
    expected = json.loads(results_file.read_text(encoding="utf-8"))["metrics"]

    code, out, _ = run_results(capsys, sweep, "--json", "--sort", "test_bleu")
    assert code == 0
    records = json.loads(out)
    assert [r["run"] for r in records] == ["1", "0"]  # runs with a score first
    gru = records[0]
    assert gru["test_bleu"] == expected["BLEU"]["score"] > 0
    assert gru["test_chrf"] == expected["chrF2"]["score"]
    assert gru["overrides"] == ["+exp=en_de", "trainer.max_time=12", "model.cell=gru"]
    assert gru["updates"] == 200 and gru.get("best_dev_bleu") is None
    assert records[1].get("test_bleu") is None and records[1]["best_step"] == 300
    assert records[1]["config_sha256"] == "0" * 64

    code, out, _ = run_results(capsys, sweep, "--sort", "best_dev_bleu")
    rows = table_rows(out)
    assert [r["run"] for r in rows] == ["0", "1"]
    assert rows[1]["test BLEU"] == f"{expected['BLEU']['score']:.2f}" and rows[0]["test BLEU"] == ""


def test_lone_runs_unreadable_summary_and_no_runs(tmp_path, capsys):
    runs = tmp_path / "runs"
    for name, score in (("en_de", 1.0), ("en_de_ref", 2.0)):
        make_run(runs / name, summary_of(10, score, 10), overrides=[f"+exp={name}", "seed=1"])
    failed = summary_of(3, 0.0, 0, stop_reason="error: training diverged", best={})
    make_run(runs / "diverged", failed, overrides=["+exp=en_de", "seed=1"])
    broken = make_run(runs / "broken", None, overrides=["+exp=en_de", "seed=1"])
    (broken / "summary.json").write_text('{"updates": 3', encoding="utf-8")
    (runs / "notes").mkdir()
    (runs / "notes" / "config.yaml").write_text("a config file alone is not a run\n")
    code, out, err = run_results(capsys, runs)
    assert code == 0
    rows = {r["run"]: r for r in table_rows(out)}
    assert set(rows) == {"broken", "diverged", "en_de", "en_de_ref"}
    # what differs between runs of one folder; `seed=1`, common to all, is left out
    assert rows["en_de"]["overrides"] == "+exp=en_de"
    assert rows["en_de_ref"]["overrides"] == "+exp=en_de_ref"
    assert rows["en_de_ref"]["best dev BLEU"] == "2.00"
    assert rows["diverged"]["stop"] == "error: training diverged"
    assert rows["diverged"]["best dev BLEU"] == "" and rows["diverged"]["updates"] == "3"
    assert rows["broken"]["updates"] == "" and rows["broken"]["stop"].startswith("no summary")
    assert f"cannot read {broken / 'summary.json'}" in err

    # a run folder given directly is named by its folder
    code, out, _ = run_results(capsys, runs / "en_de")
    assert [r["run"] for r in table_rows(out)] == ["en_de"]
    assert table_rows(out)[0]["overrides"] == "+exp=en_de seed=1"  # a lone run: all of them

    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    code, _, err = run_results(capsys, empty, tmp_path / "missing")
    assert code == 2
    assert "no training runs" in err and str(empty) in err and str(tmp_path / "missing") in err


# ------------------------------------------------------------------ launcher configs
def launcher_config(*overrides: str):
    with initialize_config_module(config_module="seq2seq.conf", version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=["+exp=en_de", *overrides],
            return_hydra_config=True,
        )
    return cfg.hydra.launcher


def test_slurm_and_local_parallel_launcher_configs_compose():
    slurm = launcher_config("hydra/launcher=slurm")
    assert slurm._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert "partition" in slurm and slurm.partition is None
    assert slurm.gpus_per_node == 1 and slurm.tasks_per_node == 1 and slurm.timeout_min > 0
    on_gpu = launcher_config("hydra/launcher=slurm", "hydra.launcher.partition=gpu")
    assert on_gpu.partition == "gpu"
    local = launcher_config("hydra/launcher=local_parallel")
    assert local._target_.endswith("joblib_launcher.JoblibLauncher") and local.n_jobs == 2


def test_every_config_file_is_packaged(repo_root):
    """setup.cfg's package_data globs must reach conf/hydra/launcher/*.yaml too."""
    setup = configparser.ConfigParser()
    setup.read(repo_root / "setup.cfg")
    globs = [g.strip() for g in setup["options.package_data"]["seq2seq.conf"].split(",")]
    conf = repo_root / "conf"
    for path in conf.rglob("*.yaml"):
        rel = path.relative_to(conf).as_posix()
        # setuptools globs: '*' does not cross '/'
        assert any(fnmatch.fnmatch(rel, g) and rel.count("/") == g.count("/") for g in globs), (
            f"{rel} is not installed by package_data {globs}"
        )


# ------------------------------------------------------------------ a real sweep
def console_script(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"console script {name} is not installed (pip install -e .)"
    return found


@pytest.mark.parametrize(
    "launcher",
    [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], []],
    ids=["joblib", "basic"],
)
def test_sweep_end_to_end(tmp_path, data_root, launcher):
    sweep_dir = tmp_path / "sweep"
    env = {
        **os.environ,
        "SEQ2SEQ_OFFLINE": "1",
        "SEQ2SEQ_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    tiny = [o for o in PINNED_TINY_MODEL if not o.startswith("model.cell=")]
    command = [
        sys.executable,
        "-m",
        "seq2seq.train",
        "-m",
        "+exp=en_de",
        *tiny,
        "model.cell=lstm,gru",
        "tokenizer.vocab_size=200",
        "data.train_subset=200",
        "data.dev_subset=20",
        "trainer.max_steps=10",
        "trainer.eval_every=10",
        "trainer.log_every=5",
        "trainer.threads=1",
        *launcher,
        f"hydra.sweep.dir={sweep_dir}",
    ]
    proc = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]

    proc = subprocess.run(
        [console_script("seq2seq-results"), str(sweep_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = table_rows(proc.stdout)
    assert sorted(r["overrides"] for r in rows) == ["model.cell=gru", "model.cell=lstm"]
    for row in rows:
        assert row["updates"] == "10"
        float(row["best dev BLEU"])  # numeric
        assert row["at step"] == "10" and float(row["tgt tok/s"].replace(",", "")) > 0
        assert row["stop"] == "reached trainer.max_steps=10"
    # the trainer's own summary.json, which the table was read from
    for job in ("0", "1"):
        summary = json.loads((sweep_dir / job / "summary.json").read_text(encoding="utf-8"))
        assert summary["steps"] == summary["updates"] == 10 and summary["error"] is None
        assert summary["best"]["dev_bleu"]["step"] == 10 and summary["wall_s"] > 0
        assert set(summary["final"]) == {"dev_loss", "dev_ppl", "dev_bleu", "dev_chrf"}
        config_text = (sweep_dir / job / "config.yaml").read_bytes()
        assert summary["config_sha256"] == hashlib.sha256(config_text).hexdigest()
        assert Path(summary["checkpoints"]["last"]).is_file()
    # the same runs as dev BLEU curves, one line each
    plot = tmp_path / "bleu.png"
    proc = subprocess.run(
        [console_script("seq2seq-results"), str(sweep_dir), "--plot", str(plot)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "plot of 2 run(s)" in proc.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
