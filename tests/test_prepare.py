"""Preparing corpora: the offline --from-dir path, checksums, atomic writes, CLI, fake download."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import logging
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from seq2seq.commands.prepare import main
from seq2seq.data import download
from seq2seq.data.checksums import verify_file
from seq2seq.data.corpora import PUBLIC, load_corpus
from seq2seq.data.corpora.multi30k import MULTI30K
from seq2seq.data.corpora.tatoeba import TATOEBA_EN_ES, URLS
from seq2seq.data.prepare import prepare_corpus
from seq2seq.data.reading import CorpusError, read_lines

TATOEBA = TATOEBA_EN_ES.files
CHECKSUMS = {rel: c for corpus in PUBLIC.values() for rel, c in corpus.checksums.items()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_same_as_shared(out_root: Path, data_root: Path, rel: str, byte_identical: bool) -> None:
    """Line-identical (same uncompressed bytes) to the shared copy, and passes the checksums."""
    out_bytes = (out_root / rel).read_bytes()
    content = gzip.decompress(out_bytes)
    assert content == gzip.decompress((data_root / rel).read_bytes()), rel
    assert content.count(b"\n") == CHECKSUMS[rel].lines
    assert hashlib.sha256(content).hexdigest() == CHECKSUMS[rel].content_sha256
    ok, message = verify_file(out_root, rel, CHECKSUMS[rel])
    assert ok, message
    if byte_identical:
        assert hashlib.sha256(out_bytes).hexdigest() == sha256(data_root / rel)
        assert sha256(data_root / rel) == CHECKSUMS[rel].sha256


def no_temp_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


@pytest.fixture(scope="module")
def spa_txt(data_root, tmp_path_factory) -> Path:
    """spa.txt rebuilt from the shared .en/.es files (paste with a tab), as manythings ships it."""
    en = read_lines(data_root / TATOEBA[0])
    es = read_lines(data_root / TATOEBA[1])
    path = tmp_path_factory.mktemp("manythings") / "spa.txt"
    path.write_bytes("".join(f"{e}\t{s}\n" for e, s in zip(en, es, strict=True)).encode())
    return path


@pytest.fixture(scope="module")
def spa_zip(spa_txt) -> Path:
    path = spa_txt.parent / "zipped" / "spa-eng.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("spa-eng/_about.txt", "Tatoeba, manythings.org/anki\n")
        zf.write(spa_txt, "spa-eng/spa.txt")
    return path


def test_checksum_table_matches_shared_data(data_root):
    for rel, expected in CHECKSUMS.items():
        assert sha256(data_root / rel) == expected.sha256, rel
        assert len(read_lines(data_root / rel)) == expected.lines


@pytest.mark.parametrize("corpus", PUBLIC.values(), ids=PUBLIC)
def test_every_file_is_read_by_some_direction(corpus):
    read = {
        rel
        for src, tgt in itertools.permutations(corpus.languages, 2)
        for rel in corpus.files_for(src, tgt)
    }
    assert read == set(corpus.files) == set(corpus.checksums)


# --------------------------------------------------------------------------- multi30k


def test_multi30k_from_dir(tmp_path, data_root):
    raw = tmp_path / "downloads"
    raw.mkdir()
    for rel in MULTI30K.files:
        shutil.copy(data_root / rel, raw)
    out = tmp_path / "data"
    written = prepare_corpus(MULTI30K, out, from_dir=raw)
    assert sorted(written) == sorted(out / rel for rel in MULTI30K.files)
    for rel in MULTI30K.files:
        assert_same_as_shared(out, data_root, rel, byte_identical=True)
    assert no_temp_files(out)
    splits = load_corpus("multi30k", out, "en", "de", download=False)
    assert [len(s) for s in splits.values()] == [29_000, 1_014, 1_000]


def test_multi30k_from_uncompressed_files_and_repo_clone(tmp_path, data_root):
    raw = tmp_path / "clone" / "data" / "task1" / "raw"  # a git clone of multi30k/dataset
    raw.mkdir(parents=True)
    wanted = ["multi30k/val.en.gz", "multi30k/val.de.gz"]
    for rel in wanted:
        (raw / Path(rel).stem).write_bytes(gzip.decompress((data_root / rel).read_bytes()))
    out = tmp_path / "data"
    prepare_corpus(MULTI30K, out, from_dir=tmp_path / "clone", files=wanted)
    for rel in wanted:  # gzip bytes are ours, the content is verified
        assert_same_as_shared(out, data_root, rel, byte_identical=False)


def test_multi30k_partial_from_dir_prepares_what_is_there(tmp_path, data_root, caplog):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(data_root / "multi30k/train.en.gz", raw)
    out = tmp_path / "data"
    with caplog.at_level(logging.WARNING, logger="seq2seq.data.prepare"):
        written = prepare_corpus(MULTI30K, out, from_dir=raw)
    assert written == [out / "multi30k/train.en.gz"]
    assert "train.de.gz" in caplog.text  # what was not prepared is reported
    with pytest.raises(CorpusError, match="missing Multi30k raw files val.en.gz"):
        prepare_corpus(MULTI30K, out, from_dir=raw, files=["multi30k/val.en.gz"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusError, match="missing Multi30k raw files"):
        prepare_corpus(MULTI30K, tmp_path / "d2", from_dir=empty)


def test_checksum_mismatch_writes_nothing_unless_no_verify(tmp_path, data_root, caplog):
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = read_lines(data_root / "multi30k/val.en.gz")
    lines[10] = "A tampered caption."
    (raw / "val.en.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    out = tmp_path / "data"
    with pytest.raises(CorpusError) as err:
        prepare_corpus(MULTI30K, out, from_dir=raw)
    message = str(err.value)
    assert "checksum mismatch" in message and "val.en.gz" in message
    assert "--no-verify" in message
    assert not (out / "multi30k/val.en.gz").exists()
    with caplog.at_level(logging.WARNING, logger="seq2seq.data.prepare"):
        prepare_corpus(MULTI30K, out, from_dir=raw, verify=False)
    assert read_lines(out / "multi30k/val.en.gz")[10] == "A tampered caption."
    assert "checksum mismatch" in caplog.text
    assert not verify_file(out, "multi30k/val.en.gz", CHECKSUMS["multi30k/val.en.gz"])[0]


def test_broken_raw_files_are_named(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "val.en.gz").write_bytes(b"not gzip")
    with pytest.raises(CorpusError, match=r"val\.en\.gz: not a valid gzip"):
        prepare_corpus(MULTI30K, tmp_path / "o", from_dir=raw, files=["multi30k/val.en.gz"])
    (raw / "val.en.gz").write_bytes(gzip.compress(b"ok\nbad \xff\n"))
    with pytest.raises(CorpusError, match=r"val\.en\.gz:2: invalid UTF-8"):
        prepare_corpus(MULTI30K, tmp_path / "o", from_dir=raw, files=["multi30k/val.en.gz"])


# --------------------------------------------------------------------------- tatoeba


def test_rebuilt_spa_txt_is_the_published_one(spa_txt):
    # SOURCES.md: spa.txt of the 2018 release is 8,042,772 bytes, CRC32 63c5c4a2.
    import zlib

    data = spa_txt.read_bytes()
    assert len(data) == 8_042_772
    assert f"{zlib.crc32(data):08x}" == "63c5c4a2"


@pytest.mark.parametrize("source", ["txt_file", "zip_file"])
def test_tatoeba_from_dir(tmp_path, data_root, spa_txt, spa_zip, source):
    from_dir = {
        "txt_file": spa_txt,
        "zip_file": spa_zip,
    }[source]
    out = tmp_path / "data"
    prepare_corpus(TATOEBA_EN_ES, out, from_dir=from_dir)
    for rel in TATOEBA:
        # our deterministic gzip reproduces the published bytes with this zlib;
        # another compressor may differ and is accepted through the content checksum.
        assert_same_as_shared(out, data_root, rel, byte_identical=source == "txt_file")
    assert no_temp_files(out)


def test_tatoeba_newer_release_with_attribution_column(tmp_path):
    spa = tmp_path / "spa.txt"
    spa.write_text(
        "Go.\tVe.\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM)\r\n"
        "Hi.\tHola.\tCC-BY 2.0 (France) Attribution: tatoeba.org #538123 (CM)\r\n",
        encoding="utf-8",
    )
    out = tmp_path / "data"
    with pytest.raises(CorpusError, match="checksum mismatch"):
        prepare_corpus(TATOEBA_EN_ES, out, from_dir=spa)
    prepare_corpus(TATOEBA_EN_ES, out, from_dir=spa, verify=False)
    assert read_lines(out / TATOEBA[0]) == ["Go.", "Hi."]
    assert read_lines(out / TATOEBA[1]) == ["Ve.", "Hola."]


def test_tatoeba_malformed_line_and_missing_source(tmp_path):
    spa = tmp_path / "spa.txt"
    spa.write_text("Go.\tVe.\nno tab on this line\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"spa\.txt:2: expected 'english<TAB>spanish"):
        prepare_corpus(TATOEBA_EN_ES, tmp_path / "o", from_dir=spa, verify=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusError, match="no spa-eng.zip or spa.txt found"):
        prepare_corpus(TATOEBA_EN_ES, tmp_path / "o", from_dir=empty)
    bad_zip = tmp_path / "z" / "spa-eng.zip"
    bad_zip.parent.mkdir()
    with zipfile.ZipFile(bad_zip, "w") as zf:
        zf.writestr("other.txt", "x")
    with pytest.raises(CorpusError, match="member named spa.txt"):
        prepare_corpus(TATOEBA_EN_ES, tmp_path / "o", from_dir=bad_zip)


# --------------------------------------------------------------------------- download path


def test_fake_download_then_load(tmp_path, monkeypatch, data_root, spa_zip):
    """With a network (simulated), load_corpus fetches and prepares a missing corpus itself."""
    fetched = []

    def fake_download(url, dest, timeout=download.DOWNLOAD_TIMEOUT):
        fetched.append(url)
        name = url.rsplit("/", 1)[-1]
        source = spa_zip if name == "spa-eng.zip" else data_root / "multi30k" / name
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, dest)
        return Path(dest)

    monkeypatch.setattr(download, "fetch", fake_download)
    monkeypatch.delenv("SEQ2SEQ_OFFLINE", raising=False)
    root = tmp_path / "data"
    splits = load_corpus("multi30k", root, "de", "en")
    assert len(splits["train"]) == 29_000
    assert len(fetched) == 6 and all("multi30k/dataset" in u for u in fetched)
    assert sorted(p.name for p in (root / "multi30k").iterdir()) == sorted(
        f"{s}.{lang}.gz" for s in ("train", "val", "test_2016_flickr") for lang in ("de", "en")
    )
    fetched.clear()
    tatoeba = load_corpus("tatoeba_en_es", root, "en", "es")
    assert sum(len(s) for s in tatoeba.values()) == 118_964
    assert fetched == [URLS[0]]


def test_tatoeba_mirrors_are_tried_in_order(tmp_path, monkeypatch):
    tried = []

    def flaky(url, dest, timeout=download.DOWNLOAD_TIMEOUT):
        tried.append(url)
        if url == URLS[0]:
            raise OSError("HTTP Error 503: Service Unavailable")
        Path(dest).write_bytes(b"zip")
        return Path(dest)

    monkeypatch.setattr(download, "fetch", flaky)
    TATOEBA_EN_ES.fetch_raw(tmp_path, TATOEBA)
    assert tried == list(URLS[:2])
    assert (tmp_path / "spa-eng.zip").read_bytes() == b"zip"


def test_every_mirror_failing_names_each(tmp_path, monkeypatch):
    def down(url, dest, timeout=download.DOWNLOAD_TIMEOUT):
        raise OSError(f"unreachable {url.split('/')[2]}")

    monkeypatch.setattr(download, "fetch", down)
    with pytest.raises(OSError, match="could not download spa-eng.zip") as err:
        TATOEBA_EN_ES.fetch_raw(tmp_path, TATOEBA)
    assert all(url in str(err.value) for url in URLS)
    assert not (tmp_path / "spa-eng.zip").exists()


# --------------------------------------------------------------------------- CLI


def test_cli_from_dir_then_already_prepared(tmp_path, data_root, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    for rel in MULTI30K.files:
        shutil.copy(data_root / rel, raw)
    out = tmp_path / "data"
    assert main(["multi30k", "--root", str(out), "--from-dir", str(raw), "-q"]) == 0
    target = out / "multi30k/train.en.gz"
    stamp = target.stat().st_mtime_ns
    # Second run: everything verifies, nothing rewritten (and no from-dir needed).
    assert main(["multi30k", "--root", str(out)]) == 0
    assert target.stat().st_mtime_ns == stamp
    assert "12 file(s) ready" in capsys.readouterr().out


def test_cli_errors_exit_nonzero(tmp_path, capsys, monkeypatch):
    def fail(url, dest, timeout=download.DOWNLOAD_TIMEOUT):
        raise OSError("Name or service not known")

    monkeypatch.setattr(download, "fetch", fail)
    assert main(["all", "--root", str(tmp_path / "d"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "multi30k: download failed" in err and "tatoeba_en_es: download failed" in err
    assert "--from-dir" in err
    assert main(["multi30k", "--root", str(tmp_path), "--from-dir", "/nonexistent"]) == 1
    assert "--from-dir not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["wmt14"])


@pytest.mark.parametrize("command", [["data_scripts/prepare.py"], ["-m", "seq2seq.data.prepare"]])
def test_cli_entry_points_run(repo_root, tmp_path, command):
    result = subprocess.run(
        [sys.executable, *command, "--help"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert not result.stderr  # no warning about the module being imported twice
    assert "--from-dir" in result.stdout and "tatoeba_en_es" in result.stdout


def test_library_modules_import_alone_without_the_command_line(repo_root):
    """Each data module imports first in a fresh interpreter; none pulls in a command."""
    code = (
        "import importlib, sys; importlib.import_module(sys.argv[1]); "
        "assert not [m for m in sys.modules if m.startswith('seq2seq.commands')], sys.argv[1]"
    )
    for module in ("seq2seq.data.prepare", "seq2seq.data.corpora.tatoeba", "seq2seq.data.corpora"):
        result = subprocess.run(
            [sys.executable, "-c", code, module],
            cwd=repo_root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
