"""Reading corpora: files, errors, cleaning, and the named corpora with their splits."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest

from seq2seq.data import download
from seq2seq.data.cleaning import CleanReport, drop_empty_pairs
from seq2seq.data.corpora import (
    ParallelSplit,
    load_corpus,
    load_files,
    tatoeba_split_of,
    to_dataset,
)
from seq2seq.data.reading import (
    CorpusError,
    read_lines,
    read_parallel,
    read_tsv,
)

TATOEBA_PAIRS = 118_964


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


# --------------------------------------------------------------------------- read_lines


@pytest.mark.parametrize("name", ["plain.txt", "packed.txt.gz"])
def test_plain_and_gzip_read_the_same(tmp_path, name):
    path = write(tmp_path / name, "a b\nçé ü\n\nlast".encode())
    assert read_lines(path) == ["a b", "çé ü", "", "last"]


def test_trailing_newline_and_final_line_without_newline(tmp_path):
    assert read_lines(write(tmp_path / "a.txt", b"x\ny\n")) == ["x", "y"]
    assert read_lines(write(tmp_path / "b.txt", b"x\ny")) == ["x", "y"]
    assert read_lines(write(tmp_path / "c.txt", b"")) == []
    assert read_lines(write(tmp_path / "d.txt", b"\n")) == [""]
    assert read_lines(write(tmp_path / "e.txt", b"x\n\n")) == ["x", ""]


def test_crlf_is_stripped_but_other_breaks_stay_in_the_line(tmp_path):
    path = write(tmp_path / "crlf.txt", b"one\r\ntwo\r\nthree\r")
    assert read_lines(path) == ["one", "two", "three"]
    # Only "\n" separates lines: lone CR, vertical tab, U+2028 stay inside a line.
    odd = write(tmp_path / "odd.txt", "a\rb\x0bc\u2028d\nnext\n".encode())
    assert read_lines(odd) == ["a\rb\x0bc\u2028d", "next"]


@pytest.mark.parametrize("name", ["bom.txt", "bom.txt.gz"])
def test_bom_at_start_is_dropped(tmp_path, name):
    path = write(tmp_path / name, "\ufeffHola\nAdiós\n".encode())
    assert read_lines(path) == ["Hola", "Adiós"]


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.en.gz"
    with pytest.raises(CorpusError, match="nope.en.gz: file not found"):
        read_lines(missing)
    with pytest.raises(CorpusError, match="is a directory"):
        read_lines(tmp_path)


@pytest.mark.parametrize("name", ["bad.txt", "bad.txt.gz"])
def test_invalid_utf8_names_file_and_line(tmp_path, name):
    lines = [f"line {i}".encode() for i in range(1, 10)]
    lines[6] = b"caf\xe9 latin-1"  # line 7
    path = write(tmp_path / name, b"\n".join(lines) + b"\n")
    with pytest.raises(CorpusError) as err:
        read_lines(path)
    message = str(err.value)
    assert f"{path}:7:" in message
    assert "line 7" in message and "UTF-8" in message and "\\xe9" in message


def test_invalid_utf8_on_first_and_last_line(tmp_path):
    with pytest.raises(CorpusError, match=r"first\.txt:1:"):
        read_lines(write(tmp_path / "first.txt", b"\xff\nok\n"))
    with pytest.raises(CorpusError, match=r"last\.txt:3:"):
        read_lines(write(tmp_path / "last.txt", b"a\nb\nc\xc3"))


def test_file_named_gz_that_is_not_gzip(tmp_path):
    path = tmp_path / "fake.en.gz"
    path.write_bytes(b"plain text\n")
    with pytest.raises(CorpusError, match="fake.en.gz: not a valid gzip file"):
        read_lines(path)


# --------------------------------------------------------------------------- parallel, tsv


def test_read_parallel_and_line_count_mismatch(tmp_path):
    src = write(tmp_path / "x.en", b"a\nb\nc\n")
    tgt = write(tmp_path / "x.de.gz", b"A\nB\nC\n")
    assert read_parallel(src, tgt) == (["a", "b", "c"], ["A", "B", "C"])
    short = write(tmp_path / "short.de", b"A\nB\n")
    with pytest.raises(CorpusError) as err:
        read_parallel(src, short)
    message = str(err.value)
    assert str(src) in message and str(short) in message
    assert "3 lines" in message and "2 lines" in message


def test_read_tsv_columns_and_too_few_columns(tmp_path):
    path = write(tmp_path / "pairs.tsv", b"Go.\tVe.\tCC-BY attribution\nHi.\tHola.\n")
    assert read_tsv(path) == (["Go.", "Hi."], ["Ve.", "Hola."])
    assert read_tsv(path, src_column=1, tgt_column=0) == (["Ve.", "Hola."], ["Go.", "Hi."])
    gz = write(tmp_path / "pairs.tsv.gz", b"a\tb\n")
    assert read_tsv(gz) == (["a"], ["b"])
    bad = write(tmp_path / "bad.tsv", b"a\tb\nc\td\nno tab here\n")
    with pytest.raises(CorpusError, match=r"bad\.tsv:3: expected at least 2"):
        read_tsv(bad)
    with pytest.raises(CorpusError, match=r"pairs\.tsv:2: expected at least 3"):
        read_tsv(path, tgt_column=2)


# --------------------------------------------------------------------------- cleaning


def test_drop_empty_pairs_counts_everything():
    src = ["a", "", "c", "  ", "e", "f"]
    tgt = ["A", "B", "", "D", "\t", "F"]
    kept_src, kept_tgt, report = drop_empty_pairs(src, tgt, name="train")
    assert (kept_src, kept_tgt) == (["a", "f"], ["A", "F"])
    assert (report.total, report.empty, report.too_long, report.kept) == (6, 4, 0, 2)
    assert report.empty_examples == [2, 3, 4, 5]
    report.add_too_long(1, examples=[6])
    assert (report.too_long, report.kept) == (1, 1)
    text = str(report)
    assert "train" in text and "6 pairs read" in text and "4 dropped as empty" in text
    assert "1 dropped as too long" in text and "1 kept" in text
    with pytest.raises(ValueError):
        report.add_too_long(5)
    with pytest.raises(CorpusError):
        drop_empty_pairs(["a"], [])


def test_clean_report_names_the_first_five_dropped_pairs_and_keeps_text_unchanged():
    src = [" a ", "", "b", "\t", *[""] * 6, "c\n"]
    tgt = ["x", "y", " ", "z", *["w"] * 6, " d "]
    kept_src, kept_tgt, report = drop_empty_pairs(src, tgt, name="train")
    assert (kept_src, kept_tgt) == ([" a ", "c\n"], ["x", " d "])  # not stripped
    assert (report.total, report.empty, report.kept) == (11, 9, 2)
    assert report.empty_examples == [2, 3, 4, 5, 6]
    assert str(report) == (
        "train: 11 pairs read, 9 dropped as empty (pairs 2, 3, 4, 5, 6, …), "
        "0 dropped as too long, 2 kept"
    )
    _, _, nothing = drop_empty_pairs([], [])
    assert str(nothing) == "0 pairs read, 0 dropped as empty, 0 dropped as too long, 0 kept"
    assert nothing == CleanReport()


# --------------------------------------------------------------------------- named corpora


def test_multi30k_sizes_and_alignment(data_root):
    splits = load_corpus("multi30k", data_root, "en", "de")
    assert set(splits) == {"train", "dev", "test"}
    assert {k: len(v) for k, v in splits.items()} == {"train": 29_000, "dev": 1_014, "test": 1_000}
    # dev is val, test is test_2016_flickr: line 1 of each file.
    assert splits["test"].src[0] == read_lines(data_root / "multi30k/test_2016_flickr.en.gz")[0]
    assert splits["dev"].tgt[0] == read_lines(data_root / "multi30k/val.de.gz")[0]
    fr_cs = load_corpus("multi30k", data_root, "fr", "cs")
    assert len(fr_cs["train"]) == 29_000


def test_unknown_corpus_or_language_pair(data_root):
    with pytest.raises(CorpusError, match="unknown corpus 'wmt99'"):
        load_corpus("wmt99", data_root, "en", "de")
    with pytest.raises(CorpusError, match="en, de, fr, cs"):
        load_corpus("multi30k", data_root, "en", "es")
    with pytest.raises(CorpusError, match="en, es"):
        load_corpus("tatoeba_en_es", data_root, "en", "en")


@pytest.fixture(scope="module")
def tatoeba(data_root):
    return load_corpus("tatoeba_en_es", data_root, "en", "es")


def test_tatoeba_split_sizes(tatoeba):
    sizes = {k: len(v) for k, v in tatoeba.items()}
    assert set(sizes) == {"train", "dev", "test"}
    assert 1_800 <= sizes["dev"] <= 2_300
    assert 1_800 <= sizes["test"] <= 2_300
    assert sum(sizes.values()) == TATOEBA_PAIRS


def test_tatoeba_no_english_sentence_in_two_splits(tatoeba):
    seen = {name: set(split.src) for name, split in tatoeba.items()}
    assert not seen["train"] & seen["dev"]
    assert not seen["train"] & seen["test"]
    assert not seen["dev"] & seen["test"]
    # Also up to case and spacing (the grouping key).
    norm = {n: {" ".join(s.split()).casefold() for s in v} for n, v in seen.items()}
    assert not (norm["train"] & norm["dev"] or norm["train"] & norm["test"])
    assert not norm["dev"] & norm["test"]
    # Sentences with several translations exist, and each stays together.
    counts = Counter(tatoeba["train"].src + tatoeba["dev"].src + tatoeba["test"].src)
    assert len(counts) == 102_904
    assert any(c > 1 for s, c in counts.items() if s in seen["test"])


def test_tatoeba_split_is_deterministic_and_direction_independent(data_root, tatoeba):
    again = load_corpus("tatoeba_en_es", data_root, "en", "es")
    for name in ("train", "dev", "test"):
        assert again[name].src == tatoeba[name].src
        assert again[name].tgt == tatoeba[name].tgt
    reverse = load_corpus("tatoeba_en_es", data_root, "es", "en")
    for name in ("dev", "test"):
        assert reverse[name].src == tatoeba[name].tgt
        assert reverse[name].tgt == tatoeba[name].src
    # The rule depends only on the sentence (hashlib, not hash()): pinned values.
    assert tatoeba_split_of("Go.") == tatoeba_split_of("  go. ")
    assert all(tatoeba_split_of(s) == "dev" for s in tatoeba["dev"].src[:50])
    assert all(tatoeba_split_of(s) == "test" for s in tatoeba["test"].src[:50])
    # Pairs keep file order inside a split (file is roughly sorted by length).
    en_all = read_lines(data_root / "en_es/manythings-spa-eng-2018.all.en.gz")
    assert [s for s in en_all if tatoeba_split_of(s) == "dev"] == tatoeba["dev"].src


def test_tatoeba_split_pinned():
    # Guards against accidental changes of the rule (which would reshuffle test sets).
    import hashlib

    key = "go."
    bucket = int(hashlib.md5(key.encode()).hexdigest(), 16) % 10_000
    expected = "dev" if bucket < 170 else "test" if bucket < 340 else "train"
    assert tatoeba_split_of("Go.") == expected


# --------------------------------------------------------------------------- files corpus


def test_load_files_aligned_and_tsv(tmp_path):
    write(tmp_path / "train.en", b"a\nb\n")
    write(tmp_path / "train.es.gz", b"A\nB\n")
    write(tmp_path / "dev.tsv", b"c\tC\n")
    write(tmp_path / "test.tsv.gz", b"x\tX\textra\n")
    paths = {"train_src": "train.en", "train_tgt": "train.es.gz", "dev": "dev.tsv"}
    splits = load_corpus("files", tmp_path, "en", "es", paths={**paths, "test": "test.tsv.gz"})
    assert splits["train"] == ParallelSplit(["a", "b"], ["A", "B"])
    assert splits["dev"] == ParallelSplit(["c"], ["C"])
    assert splits["test"] == ParallelSplit(["x"], ["X"])
    # absolute paths, reversed TSV columns, optional splits left out
    only = load_files({"train": str(tmp_path / "dev.tsv"), "src_column": 1, "tgt_column": 0})
    assert set(only) == {"train"} and only["train"] == ParallelSplit(["C"], ["c"])


def test_load_files_errors(tmp_path):
    write(tmp_path / "a.en", b"a\n")
    with pytest.raises(CorpusError, match="unknown key"):
        load_files({"train_src": "a.en", "train_tgt": "a.en", "valid_src": "x"}, tmp_path)
    with pytest.raises(CorpusError, match="train_tgt is missing"):
        load_files({"train_src": "a.en"}, tmp_path)
    with pytest.raises(CorpusError, match="no training data"):
        load_files({"dev": "d.tsv"}, tmp_path)
    with pytest.raises(CorpusError, match="not a .tsv"):
        load_files({"train": "a.en"}, tmp_path)
    with pytest.raises(CorpusError, match=r"not found: .*b\.es"):
        load_files({"train_src": "a.en", "train_tgt": "b.es"}, tmp_path)
    with pytest.raises(CorpusError, match="needs paths"):
        load_corpus("files", tmp_path, "en", "es")


def test_to_dataset():
    ds = to_dataset(ParallelSplit(["a", "b"], ["A", "B"]))
    assert ds.column_names == ["src", "tgt"]
    assert len(ds) == 2 and ds[1] == {"src": "b", "tgt": "B"}


def test_parallel_split_rejects_misaligned():
    with pytest.raises(CorpusError):
        ParallelSplit(["a"], [])


# --------------------------------------------------------------------------- missing corpus


def _offline(monkeypatch):
    calls = []

    def fail(url, dest, timeout=download.DOWNLOAD_TIMEOUT):
        calls.append(url)
        raise OSError(f"<urlopen error [Errno -2] Name or service not known> ({url})")

    monkeypatch.setattr(download, "fetch", fail)
    monkeypatch.delenv("SEQ2SEQ_OFFLINE", raising=False)
    return calls


@pytest.mark.parametrize(
    ("name", "src", "tgt", "expect"),
    [
        ("multi30k", "en", "de", ["multi30k/train.en.gz", "multi30k/test_2016_flickr.de.gz"]),
        ("tatoeba_en_es", "es", "en", ["en_es/manythings-spa-eng-2018.all.en.gz"]),
    ],
)
def test_offline_missing_corpus_names_files_and_command(
    tmp_path, monkeypatch, name, src, tgt, expect
):
    calls = _offline(monkeypatch)
    root = tmp_path / "data"
    with pytest.raises(CorpusError) as err:
        load_corpus(name, root, src, tgt)
    message = str(err.value)
    assert calls, "the downloader was tried first"
    for rel in expect:
        assert str(root / rel) in message
    assert f"python data_scripts/prepare.py {name} --root {root}" in message
    assert "--from-dir" in message
    assert "download failed" in message
    assert not (root / "multi30k").exists() and not (root / "en_es").exists()


def test_offline_only_missing_files_are_requested(tmp_path, monkeypatch, data_root):
    calls = _offline(monkeypatch)
    root = tmp_path / "data"
    (root / "multi30k").mkdir(parents=True)
    for split in ("train", "val", "test_2016_flickr"):
        (root / f"multi30k/{split}.en.gz").symlink_to(data_root / f"multi30k/{split}.en.gz")
    with pytest.raises(CorpusError) as err:
        load_corpus("multi30k", root, "en", "fr")
    message = str(err.value)
    assert "missing 3 file(s)" in message and "train.fr.gz" in message
    assert "train.en.gz" not in message
    assert all(url.endswith(".fr.gz") for url in calls)


def test_download_disabled_fails_without_network(tmp_path, monkeypatch):
    def never(*args, **kwargs):  # pragma: no cover - must not be called
        raise AssertionError("download attempted")

    monkeypatch.setattr(download, "fetch", never)
    with pytest.raises(CorpusError, match="downloads are disabled"):
        load_corpus("multi30k", tmp_path, "en", "de", download=False)
    monkeypatch.setenv("SEQ2SEQ_OFFLINE", "1")
    with pytest.raises(CorpusError, match="prepare.py multi30k"):
        load_corpus("multi30k", tmp_path, "en", "de")
