"""`check_tokenizer`: the `seq2seq.tokenizers` contract (`seq2seq.contracts.Tokenizer`)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from seq2seq.contracts import BOS_ID, EOS_ID, PAD_ID, SPECIALS
from seq2seq.testing.common import (
    Failure,
    TokenizerContractError,
    check_signature,
    name_of,
    single_threaded,
    weights_only_round_trip,
)

SAMPLE_TEXTS = [
    "A man in an orange hat starring at something.",
    "Two young, White males are outside near many bushes.",
    "A little girl climbing into a wooden playhouse.",
    "Several men in hard hats are operating a giant pulley system.",
    "A boston terrier is running on lush green grass in front of a white fence.",
    "Zwei junge Männer stehen im Freien in der Nähe vieler Büsche.",
    "Ein kleines Mädchen klettert in ein Spielhaus aus Holz.",
    "Un homme avec un chapeau orange regardant quelque chose.",
    "Dos hombres jóvenes están afuera cerca de muchos arbustos.",
    "The café's crème brûlée costs 7.50 €, or so they say!",
    'Is it 10:30? "Yes" - it is.',
    "a dog runs",
]
RESERVED = {PAD_ID, BOS_ID, EOS_ID}


class TokenizerUnderTest:
    def __init__(self, cls: Any, texts: list[str], vocab_size: int, options: dict) -> None:
        self.cls, self.texts, self.vocab_size, self.options = cls, texts, vocab_size, options
        self.fail = Failure(TokenizerContractError, f"tokenizer {name_of(cls)}")
        self.tok: Any = None  # the trained tokenizer

    def encode(self, text: str) -> list[int]:
        try:
            return self.tok.encode(text)
        except Exception as exc:
            raise self.fail(f"encode({text!r}) raised {type(exc).__name__}: {exc}", "") from exc


def has_classmethods(t: TokenizerUnderTest) -> None:
    for method in ("train", "from_state_dict"):
        if not callable(getattr(t.cls, method, None)):
            raise t.fail(
                f"has no classmethod {method}().",
                "the entry point must name a class with classmethods train(texts, vocab_size, "
                "**options) and from_state_dict(state).",
            )


def train_signature(t: TokenizerUnderTest) -> None:
    check_signature(
        t.fail,
        "tokenizer",
        t.cls.train,
        t.options,
        "pass only options that train() accepts.",
        fixed=(t.texts, t.vocab_size),
    )


def trains(t: TokenizerUnderTest) -> None:
    try:
        t.tok = t.cls.train(t.texts, t.vocab_size, **t.options)
    except Exception as exc:
        raise t.fail(
            f"train({len(t.texts)} texts, {t.vocab_size}) raised {type(exc).__name__}: {exc}",
            "train(texts: list[str], vocab_size: int, **options) must return an instance.",
        ) from exc
    for method in ("encode", "decode", "pieces", "state_dict", "save"):
        if not callable(getattr(t.tok, method, None)):
            raise t.fail(
                f"the trained tokenizer has no {method}() method.",
                "see the Protocol seq2seq.contracts.Tokenizer for every method a tokenizer offers.",
            )


def vocab_size_in_range(t: TokenizerUnderTest) -> None:
    size = getattr(t.tok, "vocab_size", None)
    if not isinstance(size, int) or size <= len(SPECIALS) or size > t.vocab_size:
        raise t.fail(
            f"vocab_size is {size!r} after train(..., vocab_size={t.vocab_size}); it must be an "
            f"int in ({len(SPECIALS)}, {t.vocab_size}].",
            "set self.vocab_size to the number of ids (specials included), at most the "
            "requested size: the model's embedding and output layers are built from it.",
        )


def ids_are_ints_in_vocabulary(t: TokenizerUnderTest) -> None:
    for text in t.texts:
        ids = t.encode(text)
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise t.fail(
                f"encode({text!r}) returned {type(ids).__name__} "
                f"{ids if not isinstance(ids, list) else [type(i).__name__ for i in ids][:5]}.",
                "return a list of Python ints (convert numpy/tensor ids with int()).",
            )
        if any(i < 0 or i >= t.tok.vocab_size for i in ids):
            raise t.fail(
                f"encode({text!r}) returned ids outside [0, vocab_size={t.tok.vocab_size}): {ids}.",
                "number the vocabulary from 0 to vocab_size - 1, specials first.",
            )


def special_ids_reserved(t: TokenizerUnderTest) -> None:
    for text in t.texts:
        ids = t.encode(text)
        if RESERVED & set(ids):
            raise t.fail(
                f"encode({text!r}) returned reserved ids {sorted(RESERVED & set(ids))}: ids "
                f"{PAD_ID}, {BOS_ID} and {EOS_ID} are pad, bos and eos (1 is unk).",
                "reserve ids 0..3 for <pad>, <unk>, <s>, </s> (seq2seq.contracts.SPECIALS) "
                "and number real tokens from 4.",
            )


def decode_reverses_encode(t: TokenizerUnderTest) -> None:
    for text in t.texts:
        back = t.tok.decode(t.encode(text))
        if back != text:
            raise t.fail(
                f"decode(encode(s)) does not give s back:\n  s      = {text!r}\n"
                f"  result = {back!r}",
                "make encode/decode reversible for normal text (keep whitespace information, "
                "e.g. a word-boundary marker like sentencepiece's '▁'); if the vocabulary is "
                "too small for these texts, pass a larger vocab_size to check_tokenizer.",
            )


def decode_skips_specials(t: TokenizerUnderTest) -> None:
    for text in t.texts:
        ids = t.encode(text)
        back, wrapped = t.tok.decode(ids), t.tok.decode([BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID])
        if wrapped != back:
            raise t.fail(
                f"decode() does not skip bos/eos/pad: {wrapped!r} instead of {back!r}.",
                f"drop ids {PAD_ID}, {BOS_ID} and {EOS_ID} in decode.",
            )


def empty_text(t: TokenizerUnderTest) -> None:
    if t.encode("") != [] or t.tok.decode([]) != "":
        raise t.fail(
            f"empty text: encode('') = {t.encode('')!r}, decode([]) = {t.tok.decode([])!r}.",
            "encode('') must return [] and decode([]) must return ''.",
        )


def state_dict_round_trip(t: TokenizerUnderTest) -> None:
    try:
        state = weights_only_round_trip(t.tok.state_dict())
    except Exception as exc:
        raise t.fail(
            f"state_dict() cannot be stored in a checkpoint and read back with "
            f"torch.load(weights_only=True): {type(exc).__name__}: {exc}",
            "return plain data only from state_dict(): str, bytes, int, float, bool, and "
            "lists/dicts of those (no custom objects).",
        ) from exc
    try:
        again = t.cls.from_state_dict(state)
    except Exception as exc:
        raise t.fail(
            f"from_state_dict(state_dict()) raised {type(exc).__name__}: {exc}", ""
        ) from exc
    if getattr(again, "vocab_size", None) != t.tok.vocab_size or any(
        again.encode(text) != t.encode(text) for text in t.texts
    ):
        raise t.fail(
            "the tokenizer rebuilt with from_state_dict(state_dict()) encodes differently.",
            "put everything encode/decode need (vocabulary, model bytes, settings) into "
            "state_dict().",
        )


def saves_files(t: TokenizerUnderTest) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "tokenizer"
        try:
            t.tok.save(target)
        except Exception as exc:
            raise t.fail(
                f"save(directory) raised {type(exc).__name__}: {exc}",
                "save(directory: Path) must create the directory (mkdir(parents=True, "
                "exist_ok=True)) and write human-readable files into it.",
            ) from exc
        if not target.is_dir() or not any(target.iterdir()):
            raise t.fail(
                "save(directory) wrote nothing.",
                "write the vocabulary (or model) into the given directory, creating it.",
            )


TOKENIZER_CLAUSES: list[tuple[str, Callable[[TokenizerUnderTest], None]]] = [
    ("train and from_state_dict are classmethods", has_classmethods),
    ("train signature", train_signature),
    ("train returns a tokenizer", trains),
    ("vocab_size", vocab_size_in_range),
    ("ids are ints in the vocabulary", ids_are_ints_in_vocabulary),
    ("special ids reserved", special_ids_reserved),
    ("decode reverses encode", decode_reverses_encode),
    ("decode skips specials", decode_skips_specials),
    ("empty text", empty_text),
    ("state_dict round trip", state_dict_round_trip),
    ("save writes files", saves_files),
]
"""The tokenizer contract's clauses, in the order `check_tokenizer` runs them."""


@single_threaded
def check_tokenizer(
    cls: Any,
    texts: Sequence[str] | None = None,
    vocab_size: int = 200,
    **options: Any,
) -> None:
    """Check a `seq2seq.tokenizers` class against the tokenizer contract.

    Trains it with `cls.train(texts, vocab_size, **options)` (default: a dozen
    real-ish sentences in several languages) and runs every clause of
    `TOKENIZER_CLAUSES`: ids are ints in [0, vocab_size); the special ids 0..3
    (pad, unk, bos, eos) are reserved: encode never returns pad/bos/eos and decode
    skips them; `decode(encode(s)) == s` for the training sentences; empty text
    works; `state_dict` survives `torch.load(weights_only=True)` and
    `from_state_dict` gives the same tokenizer; `save(directory)` writes files.
    """
    t = TokenizerUnderTest(cls, list(SAMPLE_TEXTS if texts is None else texts), vocab_size, options)
    t.fail.run(TOKENIZER_CLAUSES, t)
