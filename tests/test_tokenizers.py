"""Built-in tokenizers: trained on real text, reversible, and stored in checkpoints."""

import pytest

from seq2seq.data.reading import read_lines
from seq2seq.tokenizers import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    tokenizer_from_state,
    tokenizer_to_state,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def sentences(data_root):
    return (
        read_lines(data_root / "multi30k" / "train.en.gz")[:3000]
        + read_lines(data_root / "multi30k" / "train.de.gz")[:3000]
    )


@pytest.mark.parametrize(
    "kind,options",
    [
        ("sentencepiece", {"model_type": "unigram"}),
        ("sentencepiece", {"model_type": "bpe"}),
        ("char", {}),
        ("word", {}),
    ],
)
def test_round_trip_and_checkpoint_state(kind, options, sentences, data_root):
    tokenizer = train_tokenizer(kind, sentences, 1000, **options)
    assert tokenizer.vocab_size <= 1000 or kind == "word"
    held_out = read_lines(data_root / "multi30k" / "val.en.gz")[:200]
    for text in sentences[:200] + ([] if kind == "word" else held_out):
        ids = tokenizer.encode(text)
        assert all(EOS_ID < i < tokenizer.vocab_size or i == UNK_ID for i in ids)
        if UNK_ID not in ids:
            assert tokenizer.decode(ids) == " ".join(text.split())
    restored = tokenizer_from_state(tokenizer_to_state(kind, tokenizer))
    assert restored.vocab_size == tokenizer.vocab_size
    assert [restored.encode(t) for t in sentences[:50]] == [
        tokenizer.encode(t) for t in sentences[:50]
    ]


def test_special_ids_are_reserved(sentences):
    tokenizer = train_tokenizer("sentencepiece", sentences, 500)
    assert tokenizer.pieces([PAD_ID, UNK_ID, BOS_ID, EOS_ID]) == ["<pad>", "<unk>", "<s>", "</s>"]


def test_small_corpus_gets_smaller_vocabulary_not_a_crash():
    tokenizer = train_tokenizer("sentencepiece", ["a small corpus", "with few words"], 8000)
    assert tokenizer.vocab_size < 100
