"""The Python API and model folders, on a tiny attention model trained on real Multi30k.

`import seq2seq` exposes the public names; `Translator.from_pretrained` reads a run
folder, a checkpoint file and an exported folder alike and translates the same; an
exported folder loads without unpickling, through every door (the commands, the
the Hugging Face Hub, torch.hub); translations carry scores, n-best lists and
alignments; `score()` gives reference log-probabilities.
"""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import pytest
import torch
from packaging.version import Version

import seq2seq
from seq2seq.commands.export import main as export_main
from seq2seq.commands.score import main as score_main
from seq2seq.commands.translate import main as translate_main

BEAM = {"search": "beam", "beam_size": 4, "max_length": 30}


@pytest.fixture(scope="module")
def sentences(data_root: Path) -> tuple[list[str], list[str]]:
    """30 real test pairs (English, German)."""
    folder = data_root / "multi30k"
    with gzip.open(folder / "test_2016_flickr.en.gz", "rt", encoding="utf-8") as f:
        src = f.read().splitlines()[:30]
    with gzip.open(folder / "test_2016_flickr.de.gz", "rt", encoding="utf-8") as f:
        ref = f.read().splitlines()[:30]
    return src, ref


@pytest.fixture(scope="module")
def exported(attention_run: Path, sentences, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run exported, scored on the 30 test pairs."""
    tmp = tmp_path_factory.mktemp("exported")
    for name, lines in zip(("src.en", "ref.de"), sentences, strict=True):
        (tmp / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    folder = tmp / "en-de-tiny"
    args = ["--src", str(tmp / "src.en"), "--ref", str(tmp / "ref.de"), "--max-length", "30"]
    with pytest.raises(SystemExit) as done:
        export_main([str(attention_run), "-o", str(folder), *args])
    assert done.value.code == 0
    return folder


def test_the_package_exposes_its_public_names():
    assert Version(seq2seq.__version__)
    for name in ("Translator", "Translation", "load_config", "train_model", "Seq2Seq"):
        assert name in dir(seq2seq)
        assert getattr(seq2seq, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Translater'"):
        seq2seq.Translater  # noqa: B018


def test_translate_returns_text_with_scores_nbest_and_alignment(attention_run, sentences):
    translator = seq2seq.Translator.from_pretrained(attention_run)
    src, _ = sentences
    one = translator.translate(src[0], **BEAM)
    assert isinstance(one, seq2seq.Translation) and one.text and one.score < 0
    assert one.nbest is None and one.alignment is None
    many = translator.translate(src[:5], **BEAM, nbest=3, alignment=True)
    assert [t.text for t in many][0] == one.text and len(many) == 5
    for translation in many:
        scores = [h.score for h in translation.nbest]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)
        assert translation.nbest[0].text == translation.text
        # one alignment link per target token, pointing into the source tokens
        assert [t for _, t in translation.alignment] == list(range(len(translation.tokens)))
        n_src = len(translator.src_tokenizer.encode(src[many.index(translation)]))
        assert all(0 <= s <= n_src for s, _ in translation.alignment)


def test_the_api_and_the_command_agree_on_jsonl(attention_run, sentences, tmp_path, capsys):
    src, _ = sentences
    (tmp_path / "in.txt").write_text("\n".join([*src[:4], ""]) + "\n", encoding="utf-8")
    args = ["--checkpoint", str(attention_run), "-i", str(tmp_path / "in.txt"), "--format"]
    with pytest.raises(SystemExit):
        translate_main(
            [*args, "jsonl", "--search", "beam", "--beam-size", "4", "--nbest", "2"]
            + ["--max-length", "30"]
        )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    translator = seq2seq.Translator.from_pretrained(attention_run)
    expected = translator.translate([*src[:4], ""], **BEAM, nbest=2)
    assert [r["source"] for r in records] == [*src[:4], ""]
    assert [r["text"] for r in records] == [t.text for t in expected]
    for record, translation in zip(records, expected, strict=True):
        assert record["score"] == pytest.approx(translation.score, abs=1e-5)
        assert [h["text"] for h in record["nbest"]] == [h.text for h in translation.nbest]
        assert "alignment" not in record
    assert records[-1]["text"] == "" and records[-1]["score"] == 0.0


def test_export_round_trip_translates_the_same(attention_run, exported, sentences, capsys):
    src, _ = sentences
    original = seq2seq.Translator.from_pretrained(attention_run / "checkpoints" / "best.pt")
    loaded = seq2seq.Translator.from_pretrained(exported)
    want = original.translate(src, **BEAM)
    got = loaded.translate(src, **BEAM)
    assert [t.text for t in got] == [t.text for t in want]
    assert [t.score for t in got] == pytest.approx([t.score for t in want], abs=1e-5)
    # the command line reads the folder too
    with pytest.raises(SystemExit):
        translate_main(["--checkpoint", str(exported), "-i", str(exported.parent / "src.en")])
    assert capsys.readouterr().out.splitlines() == [t.text for t in loaded.translate(src)]


def test_the_folder_holds_safetensors_json_tokenizer_and_a_card(exported):
    assert sorted(p.name for p in exported.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "shortlist.safetensors",
        "tokenizer",
    ]
    config = json.loads((exported / "config.json").read_text(encoding="utf-8"))
    assert config["source_language"] == "en" and config["target_language"] == "de"
    assert config["model_spec"]["decoder"] == "bahdanau"
    (scores,) = config["metadata"]["scores"]
    card = (exported / "README.md").read_text(encoding="utf-8")
    assert "English→German" in card and "multi30k" in card
    assert scores["BLEU"]["signature"].startswith("BLEU|nrefs:1|")
    assert scores["BLEU"]["signature"] in card and scores["chrF2"]["signature"] in card
    assert f"{scores['BLEU']['score']:.2f}" in card
    assert "40 updates" in card  # from the run's summary.json


def test_loading_a_folder_never_unpickles(exported, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model folder must load without pickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert seq2seq.Translator.from_pretrained(exported).translate("A dog runs.").text is not None


def test_hub_mixin_and_torch_hub_on_local_folders(exported, repo_root, tmp_path, sentences):
    src, _ = sentences
    translator = seq2seq.Translator.from_pretrained(exported)
    translator.save_pretrained(tmp_path / "again")
    assert (tmp_path / "again" / "model.safetensors").is_file()
    assert (tmp_path / "again" / "README.md").read_text(encoding="utf-8") == (
        exported / "README.md"
    ).read_text(encoding="utf-8")
    hub = torch.hub.load(str(repo_root), "translator", str(tmp_path / "again"), source="local")
    assert [t.text for t in hub.translate(src[:5])] == [
        t.text for t in translator.translate(src[:5])
    ]


def test_push_to_hub_uploads_the_model_folder(exported, tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("token", token))

        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls.append(("create", repo_id, exist_ok))

        def upload_folder(self, *, repo_id, folder_path, revision, commit_message):
            files = sorted(p.name for p in Path(folder_path).iterdir())
            calls.append(("upload", repo_id, files))
            return "https://huggingface.co/me/en-de/commit/1"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    translator = seq2seq.Translator.from_pretrained(exported)
    assert (
        translator.push_to_hub("me/en-de", token="t") == "https://huggingface.co/me/en-de/commit/1"
    )
    assert calls[:2] == [("token", "t"), ("create", "me/en-de", True)]
    assert calls[2][:2] == ("upload", "me/en-de")
    assert {"model.safetensors", "config.json", "README.md", "tokenizer"} <= set(calls[2][2])


def test_an_existing_folder_is_not_overwritten(attention_run, exported, capsys):
    before = (exported / "config.json").read_bytes()
    with pytest.raises(SystemExit) as done:
        export_main([str(attention_run), "-o", str(exported), "--no-scores"])
    assert done.value.code == 2
    assert "already holds files" in capsys.readouterr().err
    assert (exported / "config.json").read_bytes() == before


def test_score_gives_per_sentence_total_and_per_token(exported, sentences, tmp_path, capsys):
    src, ref = sentences
    (tmp_path / "src").write_text("\n".join(src) + "\n", encoding="utf-8")
    (tmp_path / "ref").write_text("\n".join(ref) + "\n", encoding="utf-8")
    args = ["--checkpoint", str(exported), "--src", str(tmp_path / "src")]
    with pytest.raises(SystemExit):
        score_main([*args, "--ref", str(tmp_path / "ref"), "--json"])
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    expected = seq2seq.Translator.from_pretrained(exported).score(src, ref)
    assert [r["line"] for r in records] == list(range(1, 31))
    for record, found in zip(records, expected, strict=True):
        assert record["logprob"] == pytest.approx(found.logprob, abs=1e-3) and found.logprob < 0
        assert record["per_token"] == pytest.approx(found.logprob / found.tokens, abs=1e-3)
    total = sum(s.logprob for s in expected)
    assert f"log-probability {total:.2f} over {sum(s.tokens for s in expected)} tokens" in err


def test_a_run_folder_without_checkpoints_names_every_path_tried(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("task: translation\n", encoding="utf-8")
    with pytest.raises(SystemExit) as done:
        translate_main(["--checkpoint", str(run)])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "Traceback" not in err and len(err.splitlines()) == 1
    for tried in (
        "checkpoints/best.pt",
        "best.pt",
        "checkpoints/averaged.pt",
        "checkpoints/last.pt",
    ):
        assert str(run / tried) in err
    assert str(run / "config.json") in err and str(run / "model.safetensors") in err
