"""Translating with the numpy runtime: an exported model folder in, the very lines the
torch translator writes out. Loading imports numpy, safetensors and sentencepiece
only, so a one-line translation starts in a fraction of a second."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from seq2seq.checkpoint import CheckpointError
from seq2seq.contracts import EOS_ID, PAD_ID
from seq2seq.hardware import available_cores
from seq2seq.registry import PluginError
from seq2seq.runtime.network import NumpyModel, Shortlisted, unsupported
from seq2seq.runtime.search import STRATEGIES
from seq2seq.search import BATCH_SENTENCES, Hypothesis, check_options
from seq2seq.tokenizers import Tokenizer
from seq2seq.translation.candidates import candidate_set
from seq2seq.translation.model_folder import (
    SHORTLIST_NAME,
    WEIGHTS_NAME,
    read_description,
    read_folder_tokenizers,
    read_tensors,
)
from seq2seq.translation.output import LineTranslator


def folder_unsupported(folder: str | Path) -> str | None:
    """Why the numpy runtime cannot translate with `folder`, or None when it can."""
    spec = read_description(folder).get("model_spec")
    if not isinstance(spec, dict):
        return f"{Path(folder) / 'config.json'} has no model_spec"
    return unsupported(spec)


class NumpyTranslator(LineTranslator):
    """`translate`, `hypotheses` and `translations` as `seq2seq.Translator` has them,
    without torch, for a model folder (`from_folder`)."""

    max_source_tokens = 250

    def __init__(
        self,
        model: NumpyModel,
        src_tokenizer: Tokenizer,
        tgt_tokenizer: Tokenizer,
        shortlist: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.model = model
        self.src_tokenizer, self.tgt_tokenizer = src_tokenizer, tgt_tokenizer
        self.shortlist = shortlist  # (table, frequent), as seq2seq.translation.shortlist
        self.use_shortlist = False
        self.threads = available_cores()  # batches decoded at once, one a core

    @classmethod
    def from_folder(cls, folder: str | Path) -> NumpyTranslator:
        folder = Path(folder)
        description = read_description(folder)
        try:
            model = NumpyModel(description["model_spec"], read_tensors(folder / WEIGHTS_NAME))
        except (KeyError, TypeError, IndexError) as exc:
            raise CheckpointError(
                f"{folder / WEIGHTS_NAME} does not hold the weights {folder / 'config.json'} "
                f"describes ({type(exc).__name__}: {exc})"
            ) from None
        shortlist = None
        if (folder / SHORTLIST_NAME).is_file():
            found = read_tensors(folder / SHORTLIST_NAME)
            shortlist = (found["table"].astype(np.int64), found["frequent"].astype(np.int64))
        src, tgt = read_folder_tokenizers(folder)
        return cls(model, src, tgt, shortlist)

    def hypotheses(
        self,
        lines: Iterable[str],
        search: str = "greedy",
        batch_size: int = BATCH_SENTENCES,
        **search_options: Any,
    ) -> list[list[Hypothesis]]:
        """Each line's hypotheses, best first, batched by length (an empty line gets one
        empty hypothesis). A batch is shared out over `self.threads` cores, each
        decoding its part on its own: numpy runs element-wise work on one core, so
        concurrent parts keep both busy where one batch would leave one idle."""
        strategy = STRATEGIES.get(search)
        if strategy is None:
            raise PluginError(f"search '{search}': the numpy runtime runs {', '.join(STRATEGIES)}")
        check_options(search, search_options, strategy)
        encoded = [self._encode(line) for line in lines]
        results: list[list[Hypothesis]] = [[Hypothesis([], 0.0)] for _ in encoded]
        part = -(-batch_size // self.threads)

        def decode(chunk: list[int]) -> list[list[Hypothesis]]:
            rows = [encoded[i] + [EOS_ID] for i in chunk]
            lengths = np.array([len(r) for r in rows], np.int64)
            src = np.full((len(rows), int(lengths.max())), PAD_ID, np.int64)
            for row, ids in enumerate(rows):
                src[row, : len(ids)] = ids
            if not (self.use_shortlist and self.shortlist is not None):
                return strategy(self.model, src, lengths, **search_options)
            model = Shortlisted(self.model, *candidate_set(*self.shortlist, src))
            return [
                [Hypothesis(model.vocabulary_ids(row, h.tokens), h.score) for h in found]
                for row, found in enumerate(strategy(model, src, lengths, **search_options))
            ]

        chunks = list(self.batches(encoded, part))
        # one BLAS thread per part: the parts already fill the cores
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(self.threads) as pool:
            decoded = pool.map(decode, chunks) if self.threads > 1 else map(decode, chunks)
            for chunk, hyps in zip(chunks, decoded, strict=True):
                for index, found in zip(chunk, hyps, strict=True):
                    results[index] = found or [Hypothesis([], float("-inf"))]
        return results
