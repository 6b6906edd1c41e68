"""SentencePiece subwords (BPE or unigram), trained in memory and stored as bytes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import sentencepiece as spm

from seq2seq.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID


class SentencePieceTokenizer:
    """SentencePiece subwords (model_type unigram or bpe), trained on the training split."""

    def __init__(self, model_proto: bytes) -> None:
        self.model_proto = model_proto
        self.processor = spm.SentencePieceProcessor(model_proto=model_proto)
        self.vocab_size = self.processor.get_piece_size()

    @classmethod
    def train(
        cls,
        texts: list[str],
        vocab_size: int,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
        max_sentences: int = 2_000_000,
        seed_sentencepiece_size: int = 1_000_000,
    ) -> SentencePieceTokenizer:
        if model_type not in ("unigram", "bpe"):
            raise ValueError(
                f"sentencepiece: model_type must be 'unigram' or 'bpe', got '{model_type}'"
            )
        sentences = [t for t in texts if t.strip()]
        if not sentences:
            raise ValueError("sentencepiece: cannot train a tokenizer on an empty corpus")
        if not isinstance(vocab_size, int) or vocab_size < 5:
            raise ValueError(
                f"tokenizer.vocab_size must be an integer >= 5 (4 special pieces + text); "
                f"got {vocab_size!r}"
            )
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences),
                model_writer=model,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                pad_id=PAD_ID,
                unk_id=UNK_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                hard_vocab_limit=False,  # small corpora get a smaller vocabulary, not a crash
                input_sentence_size=max_sentences,
                shuffle_input_sentence=True,
                seed_sentencepiece_size=seed_sentencepiece_size,
                max_sentence_length=1 << 16,
                num_threads=2,
                minloglevel=2,
            )
        except RuntimeError as exc:
            raise ValueError(
                f"sentencepiece could not train with tokenizer.vocab_size={vocab_size}: {exc}. "
                "The vocabulary must hold at least every distinct character of the corpus: "
                "raise tokenizer.vocab_size"
            ) from exc
        return cls(model.getvalue())

    def encode(self, text: str) -> list[int]:
        return self.processor.encode(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.processor.encode(texts)

    def decode(self, ids: list[int]) -> str:
        return self.processor.decode([i for i in ids if i > EOS_ID or i == UNK_ID])

    def pieces(self, ids: list[int]) -> list[str]:
        return [self.processor.id_to_piece(i) for i in ids]

    def state_dict(self) -> dict[str, Any]:
        return {"model_proto": self.model_proto}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> SentencePieceTokenizer:
        return cls(state["model_proto"])

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "spm.model").write_bytes(self.model_proto)
        with open(directory / "spm.vocab", "w", encoding="utf-8") as f:
            for i in range(self.vocab_size):
                f.write(f"{self.processor.id_to_piece(i)}\t{self.processor.get_score(i)}\n")
