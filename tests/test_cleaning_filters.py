"""data.filters: each filter drops exactly the pairs built to trip it, and says how many.

Small corpora go through the real pipeline (data=files, word tokenizer, no cache); the
default filters keep today's training data for the en_de recipe.
"""

from __future__ import annotations

import functools
import json
import logging

import pytest
from _models import make_config
from hydra.errors import ConfigCompositionException

from seq2seq.config import ConfigError, validate
from seq2seq.data.cleaning import Filters, clean_pairs, has_control_chars
from seq2seq.data.pipeline import prepare_data
from seq2seq.data.streaming import StreamStats, stream_batches
from seq2seq.tokenizers import train_tokenizer
from seq2seq.training.corpus import write_data_report

DEV = [("a dev line", "eine Zeile"), ("same", "same"), ("bell\x07", "Glocke")]


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def files_config(tmp_path, pairs, overrides=()):
    for name, rows in (("train", pairs), ("dev", DEV)):
        _write(tmp_path / f"{name}.src", [s for s, _ in rows])
        _write(tmp_path / f"{name}.tgt", [t for _, t in rows])
    files = [
        f"data.files.{split}_{side}={tmp_path / f'{split}.{side}'}"
        for split in ("train", "dev")
        for side in ("src", "tgt")
    ]
    return make_config(["data=files", *files, "data.cache_dir=off", "tokenizer=word", *overrides])


def prepare(tmp_path, pairs, overrides=()):
    cfg = files_config(tmp_path, pairs, overrides)
    validate(cfg)
    return prepare_data(cfg.data, cfg.tokenizer)


def surviving(data):
    """The kept training pairs as text (the word tokenizer joins words with one space)."""
    train = data.train
    return [
        (data.src_tokenizer.decode(s), data.tgt_tokenizer.decode(t))
        for s, t in zip(train.src_ids, train.tgt_ids, strict=True)
    ]


CONTROL = [
    ("a dog", "ein Hund"),
    ("a\x07 bell", "eine Glocke"),  # BEL: a C0 control
    ("nice", "schön\ufffd"),  # U+FFFD: text that was not valid UTF-8 somewhere
    ("tab\there", "tab da"),  # a tab is not dropped
    ("private \ue000 use", "privat"),  # private use area
    ("next\x85line", "NEL"),  # C1 control
    ("unassigned \u0378", "frei"),  # an unassigned code point
    ("zero\u200dwidth", "ok"),  # a format character (ZWJ) is legitimate text
]


def test_control_characters(tmp_path):
    data = prepare(tmp_path, CONTROL, ["data.filters.drop_control_chars=true"])
    assert data.report.dropped == {"empty": 0, "control_chars": 5, "too_long": 0}
    assert data.report.examples == {"control_chars": [2, 3, 5, 6, 7]}
    assert (data.report.total, data.report.kept) == (8, 3)
    assert surviving(data) == [
        ("a dog", "ein Hund"),
        ("tab here", "tab da"),
        ("zero\u200dwidth", "ok"),
    ]
    assert "5 dropped for control characters (pairs 2, 3, 5, 6, 7)" in str(data.report)


def test_the_defaults_drop_nothing_that_today_keeps(tmp_path):
    data = prepare(tmp_path, CONTROL)
    assert data.report.dropped == {"empty": 0, "too_long": 0}
    assert data.report.kept == 8
    assert str(data.report) == "8 pairs read, 0 dropped as empty, 0 dropped as too long, 8 kept"


def test_max_chars(tmp_path):
    pairs = [("short", "kurz"), ("longer than ten", "x"), ("y", "0123456789A"), ("ten chars!", "z")]
    data = prepare(tmp_path, pairs, ["data.filters.max_chars=10"])
    assert data.report.dropped == {"empty": 0, "too_many_chars": 2, "too_long": 0}
    assert data.report.examples == {"too_many_chars": [2, 3]}
    assert surviving(data) == [("short", "kurz"), ("ten chars!", "z")]


def test_copies(tmp_path):
    pairs = [("Hello", "Hallo"), ("OK", "OK"), ("ok ", "ok"), ("Same", "same"), ("x", "y")]
    data = prepare(tmp_path, pairs, ["data.filters.drop_copies=true"])
    assert data.report.dropped == {"empty": 0, "copy": 2, "too_long": 0}
    assert data.report.examples == {"copy": [2, 3]}
    assert surviving(data) == [("Hello", "Hallo"), ("Same", "same"), ("x", "y")]  # case counts


def test_duplicates_keep_the_first(tmp_path):
    pairs = [("a", "b"), ("a", "c"), ("a", "b"), (" a", "b "), ("c", "d"), ("a", "c")]
    data = prepare(tmp_path, pairs, ["data.filters.dedupe=true"])
    assert data.report.dropped == {"empty": 0, "duplicate": 3, "too_long": 0}
    assert data.report.examples == {"duplicate": [3, 4, 6]}
    assert surviving(data) == [("a", "b"), ("a", "c"), ("c", "d")]


def test_length_ratio_counts_tokens(tmp_path):
    pairs = [
        ("one two", "eins zwei"),
        ("one", "eins zwei drei"),  # 3 > 2 × 1
        ("a b c d", "w x"),  # 4 = 2 × 2: kept
        ("a b c d e", "x y"),  # 5 > 2 × 2
    ]
    data = prepare(tmp_path, pairs, ["data.filters.max_length_ratio=2.0"])
    assert data.report.dropped == {"empty": 0, "too_long": 0, "length_ratio": 2}
    assert data.report.examples == {"length_ratio": [2, 4]}
    assert surviving(data) == [("one two", "eins zwei"), ("a b c d", "w x")]


def test_max_length_is_the_token_limit_and_runs_before_the_ratio(tmp_path):
    pairs = [("a b c d", "x"), ("a b", "x y"), ("a b c", "x y z")]
    data = prepare(tmp_path, pairs, ["data.max_length=3", "data.filters.max_length_ratio=1.5"])
    assert data.report.dropped == {"empty": 0, "too_long": 1, "length_ratio": 0}
    assert data.report.examples == {"too_long": [1]}
    assert surviving(data) == [("a b", "x y"), ("a b c", "x y z")]


def test_every_filter_at_once_counts_each_pair_once(tmp_path, caplog):
    pairs = [
        ("keep me", "behalte mich"),
        ("", "leer"),  # empty (and too short for anything else)
        ("bad\x00", "bad\x00"),  # control characters first, though it is a copy too
        ("copy", "copy"),
        ("keep me", "behalte mich"),  # duplicate of pair 1
        ("far too many characters here", "x"),  # over max_chars before anything else
        ("one", "eins zwei drei vier"),  # length ratio
        ("w1 w2 w3 w4 w5 w6", "v1 v2 v3 v4 v5 v6"),  # over max_length=5 tokens
        ("also kept", "auch behalten"),
    ]
    overrides = [
        "data.max_length=5",
        "data.filters.max_chars=25",
        "data.filters.max_length_ratio=3",
        "data.filters.drop_copies=true",
        "data.filters.dedupe=true",
        "data.filters.drop_control_chars=true",
    ]
    with caplog.at_level(logging.INFO):
        data = prepare(tmp_path, pairs, overrides)
    report = data.report
    assert report.as_dict() == {
        "name": "",
        "total": 9,
        "dropped": {
            "empty": 1,
            "control_chars": 1,
            "too_many_chars": 1,
            "copy": 1,
            "duplicate": 1,
            "too_long": 1,
            "length_ratio": 1,
        },
        "kept": 2,
        "examples": {
            "empty": [2],
            "control_chars": [3],
            "too_many_chars": [6],
            "copy": [4],
            "duplicate": [5],
            "too_long": [8],
            "length_ratio": [7],
        },
    }
    assert surviving(data) == [("keep me", "behalte mich"), ("also kept", "auch behalten")]
    expected = (
        "9 pairs read, 1 dropped as empty (pairs 2), 1 dropped for control characters "
        "(pairs 3), 1 dropped as over data.filters.max_chars characters (pairs 6), "
        "1 dropped as copies (source = target) (pairs 4), 1 dropped as duplicates (pairs 5), "
        "1 dropped as too long (pairs 8), 1 dropped for their length ratio (pairs 7), 2 kept"
    )
    assert str(report) == expected
    assert f"training data: {expected}" in caplog.text
    write_data_report(tmp_path / "run", report)
    saved = json.loads((tmp_path / "run" / "data_report.json").read_text(encoding="utf-8"))
    assert saved == report.as_dict()


def test_dev_is_never_filtered(tmp_path):
    pairs = [("a b", "c d"), ("e f", "g h")]
    overrides = ["data.filters.drop_copies=true", "data.filters.drop_control_chars=true"]
    data = prepare(tmp_path, pairs, overrides)
    assert list(zip(data.dev.src, data.dev.tgt, strict=True)) == DEV


def test_no_pair_left_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"no training pair is left \(2 pairs read.*2 dropped"):
        prepare(tmp_path, [("x", "x"), ("y", "y")], ["data.filters.drop_copies=true"])


@pytest.mark.parametrize(
    ("override", "words"),
    [
        (
            "data.filters.max_length_ratio=0.5",
            "data.filters.max_length_ratio must be a number >= 1",
        ),
        ("data.filters.max_chars=0", "data.filters.max_chars must be a whole number >= 1"),
    ],
)
def test_bad_values_name_the_key(tmp_path, override, words):
    cfg = files_config(tmp_path, [("a", "b")], [override])
    with pytest.raises(ConfigError, match=words):
        validate(cfg)


def test_an_unknown_filter_is_refused(tmp_path):
    with pytest.raises(ConfigCompositionException, match="dedup"):
        files_config(tmp_path, [("a", "b")], ["data.filters.dedup=true"])


def test_a_config_without_filters_means_none():
    assert Filters.from_config({"max_length": 5}) == Filters()
    assert Filters.from_config(None) == Filters()


def test_clean_pairs_returns_the_pair_numbers():
    src, tgt, numbers, report = clean_pairs(
        ["a", "", "b", "b"], ["A", "B", "B", "B"], Filters(dedupe=True), name="train"
    )
    assert (src, tgt, numbers) == (["a", "b"], ["A", "B"], [1, 3])
    assert report.dropped == {"empty": 1, "duplicate": 1, "too_long": 0}


def test_has_control_chars():
    assert not has_control_chars("Grüße, 日本語\tand\u200c ZWNJ")
    for bad in ("\x00", "\x1b[0m", "\r", "\x9f", "\ufffd", "\U000f0001", "\ufffe"):
        assert has_control_chars(f"a{bad}b"), repr(bad)


def test_streaming_applies_the_same_filters(tmp_path):
    rows = [
        ("keep me", "behalte mich"),
        ("copy", "copy"),
        ("bell\x07", "Glocke"),
        ("far too many characters here", "x"),
        ("one", "eins zwei drei vier"),
        ("also kept", "auch behalten"),
    ]
    shard = tmp_path / "train-0.jsonl"
    shard.write_text(
        "".join(json.dumps({"src": s, "tgt": t}) + "\n" for s, t in rows), encoding="utf-8"
    )
    tok = train_tokenizer("word", [text for row in rows for text in row], 100)
    stats = StreamStats()
    filters = Filters(max_chars=25, max_length_ratio=3, drop_copies=True, drop_control_chars=True)
    stream = functools.partial(
        stream_batches,
        [str(shard)],
        tok,
        tok,
        rank=0,
        world_size=1,
        epoch=0,
        seed=0,
        batch_tokens=1000,
        batch_sentences=None,
        max_length=100,
        window=100,
    )
    batches = stream(stats=stats, filters=filters)
    kept = sorted(
        (tok.decode(s), tok.decode(t))
        for src, tgt in batches
        for s, t in zip(src, tgt, strict=True)
    )
    assert kept == [("also kept", "auch behalten"), ("keep me", "behalte mich")]
    assert stats == StreamStats(
        read=6,
        kept=2,
        filtered={"copy": 1, "control_chars": 1, "too_many_chars": 1, "length_ratio": 1},
    )
    with pytest.raises(ValueError, match="dedupe"):
        stream(filters=Filters(dedupe=True))


def test_the_defaults_keep_the_en_de_training_data():
    """29,000 pairs: the count prepared for +exp=en_de before the filters existed."""
    cfg = make_config(["data.cache_dir=off"], exp="en_de")
    validate(cfg)
    data = prepare_data(cfg.data, cfg.tokenizer)
    assert data.report.as_dict()["dropped"] == {"empty": 0, "too_long": 0}
    assert (data.report.total, data.report.kept, len(data.train)) == (29000, 29000, 29000)
