"""The tokenizer/tokenized-data cache: a hit gives exactly what a fresh build gives."""

from __future__ import annotations

import logging

from _models import make_config

from seq2seq.data.cache import resolve_cache_dir
from seq2seq.data.pipeline import prepare_data


def small_config(cache_dir, vocab: int = 300):
    return make_config(
        [
            "data.train_subset=1500",
            "data.dev_subset=20",
            f"tokenizer.vocab_size={vocab}",
            f"data.cache_dir={cache_dir}",
        ]
    )


def test_a_cache_hit_equals_a_fresh_build(tmp_path, caplog):
    cache = tmp_path / "cache"
    fresh = prepare_data(small_config("off").data, small_config("off").tokenizer)
    cfg = small_config(cache)
    with caplog.at_level(logging.INFO):
        first = prepare_data(cfg.data, cfg.tokenizer)
        assert "from the cache" not in caplog.text
        second = prepare_data(cfg.data, cfg.tokenizer)
    assert "tokenizers: from the cache" in caplog.text
    assert "tokenized training data: from the cache" in caplog.text
    for run in (first, second):
        assert run.train.src_ids == fresh.train.src_ids
        assert run.train.tgt_ids == fresh.train.tgt_ids
        assert run.src_tokenizer.encode("A dog runs.") == fresh.src_tokenizer.encode("A dog runs.")
    assert sorted(p.name for p in cache.iterdir()) == ["tokenized", "tokenizers"]


def test_other_settings_or_text_miss_the_cache(tmp_path, caplog):
    cache = tmp_path / "cache"
    cfg = small_config(cache)
    prepare_data(cfg.data, cfg.tokenizer)
    other = small_config(cache, vocab=320)
    with caplog.at_level(logging.INFO):
        data = prepare_data(other.data, other.tokenizer)
    assert "from the cache" not in caplog.text
    assert data.src_tokenizer.vocab_size != 300
    assert len(list((cache / "tokenizers").iterdir())) == 2


def test_a_damaged_entry_is_rebuilt(tmp_path, caplog):
    cache = tmp_path / "cache"
    cfg = small_config(cache)
    reference = prepare_data(cfg.data, cfg.tokenizer)
    for entry in (cache / "tokenizers").iterdir():
        entry.write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        again = prepare_data(cfg.data, cfg.tokenizer)
    assert "ignoring unreadable" in caplog.text
    assert again.train.src_ids == reference.train.src_ids


def test_cache_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("SEQ2SEQ_CACHE", raising=False)
    assert resolve_cache_dir(None).parts[-2:] == (".cache", "seq2seq")
    assert resolve_cache_dir("off") is None
    assert resolve_cache_dir(tmp_path) == tmp_path
    monkeypatch.setenv("SEQ2SEQ_CACHE", "off")
    assert resolve_cache_dir(None) is None
    monkeypatch.setenv("SEQ2SEQ_CACHE", str(tmp_path / "c"))
    assert resolve_cache_dir(None) == tmp_path / "c"
