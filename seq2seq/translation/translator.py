"""Loading a trained model and translating lists of lines, in order, one output per input.

`Translator` is the Python API's entry point: `Translator.from_pretrained(path)` takes
a checkpoint file, a run folder or an exported model folder (or a Hugging Face Hub
repository id); `translate()` returns text with scores, n-best lists and alignments;
`score()` gives the model's log-probability of given references. `save_pretrained` and
`push_to_hub` share a model folder. huggingface_hub is imported only by the calls that
reach the Hub: importing it costs half a second of every command's start-up.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from seq2seq.checkpoint import CheckpointError, load_checkpoint
from seq2seq.data.batching import source_tensor
from seq2seq.hardware import autocast, resolve_precision
from seq2seq.nn.ensemble import Ensemble
from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.search import BATCH_SENTENCES, Hypothesis, generate
from seq2seq.tokenizers import UNK_ID, Tokenizer, tokenizer_from_state
from seq2seq.translation.forced import forced_decode
from seq2seq.translation.model_card import model_card
from seq2seq.translation.model_folder import (
    is_model_folder,
    read_model_folder,
    read_shortlist,
    write_model_folder,
)
from seq2seq.translation.output import LineTranslator, Translation, clean_line
from seq2seq.translation.shortlist import Shortlist, shortlisted, to_vocabulary

log = logging.getLogger(__name__)

HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


@dataclass
class ReferenceScore:
    """The model's log-probability of a given translation (teacher-forced).

    `logprob` sums the natural-log probabilities of the reference's subword tokens and
    EOS; `tokens` counts them (EOS included), so `logprob / tokens` is per token.
    """

    logprob: float
    tokens: int

    @property
    def per_token(self) -> float:
        return self.logprob / self.tokens


@dataclass
class Translator(LineTranslator):
    model: Seq2Seq | Ensemble
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    config: dict[str, Any] = field(default_factory=dict)  # the training config
    max_source_tokens: int = 250
    precision: str = "fp32"  # fp32 | bf16 (autocast where the hardware has native bf16)
    tokenizer_type: str = "sentencepiece"  # the tokenizers' registered name
    metadata: dict[str, Any] = field(default_factory=dict)  # what the model card shows
    shortlist: Shortlist | None = None  # the model's candidate target tokens, if it has them
    # Decode over the shortlist: faster on CPUs, but not the default, as beam search lost
    # up to 0.5 BLEU with it on some models.
    use_shortlist: bool = False

    # -- loading ------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: str = "cpu",
        precision: str = "auto",
        **hub_options: Any,
    ) -> Translator:
        """A checkpoint file, a run folder, an exported model folder, or a Hub repository.

        A path that exists is read locally; otherwise `path` is taken as a Hugging Face
        Hub repository id (e.g. `user/en-de-rnn`) and downloaded into the Hub's cache
        (`hub_options` go to the download: revision, token, cache_dir, …). `precision`
        fp32, bf16 or auto (bf16 where the hardware has it natively).
        """
        chosen = resolve_precision(device, precision, "precision")
        if Path(path).exists() or not HUB_ID.match(str(path)):
            translator = cls.from_checkpoint(path, device=device)
        else:
            translator = cls.from_checkpoint(_hub_download(str(path), hub_options), device=device)
        translator.precision = chosen
        return translator

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> Translator:
        """One checkpoint file, run folder or model folder (several: see from_checkpoints)."""
        if isinstance(path, (list, tuple)):
            return cls.from_checkpoints(path, device=device)
        if is_model_folder(path):
            model, src, tgt, description = read_model_folder(path, device)
            config = description.get("training_config", {})
            return cls(
                model,
                src,
                tgt,
                config,
                tokenizer_type=config.get("tokenizer", {}).get("type", "sentencepiece"),
                metadata=description.get("metadata", {}),
                shortlist=Shortlist.from_state(read_shortlist(path)),
            )
        payload = translation_payload(path)
        tokenizers = payload["tokenizers"]
        return cls(
            _load_model(payload, device),
            tokenizer_from_state(tokenizers["src"]),
            tokenizer_from_state(tokenizers["tgt"]),
            payload.get("config", {}),
            tokenizer_type=tokenizers["src"]["type"],
            metadata={**_run_metadata(path), **_data_metadata(payload)},
            shortlist=Shortlist.from_state(payload.get("shortlist")),
        )

    @classmethod
    def from_checkpoints(cls, paths: Sequence[str | Path], device: str = "cpu") -> Translator:
        """An ensemble of models (one path: exactly from_checkpoint).

        Tokenizers and config come from the first; every member must use the same
        source and target vocabularies (a clear error names the odd one).
        """
        paths = list(paths)
        if not paths:
            raise ValueError("no checkpoint given")
        members = [cls.from_checkpoint(path, device=device) for path in paths]
        if len(members) == 1:
            return members[0]
        first = members[0]
        for path, member in zip(paths[1:], members[1:], strict=True):
            _check_same_vocabularies(first, member, paths[0], path)
        return cls(
            Ensemble([m.model for m in members]).eval(),
            first.src_tokenizer,
            first.tgt_tokenizer,
            first.config,
            tokenizer_type=first.tokenizer_type,
            metadata={k: v for k, v in first.metadata.items() if k == "source_lengths"},
            shortlist=first.shortlist,  # the members share their vocabularies
        )

    def quantize(self, mode: str = "int8") -> Translator:
        """Decode with int8 linear layers (seq2seq.translation.quantization); in place."""
        from seq2seq.translation.quantization import QUANTIZATIONS, quantize_int8

        if mode not in QUANTIZATIONS:
            raise ValueError(f"quantization {mode!r}: expected one of {', '.join(QUANTIZATIONS)}")
        if mode == "int8":
            if self.precision != "fp32":
                raise ValueError(f"int8 quantization needs fp32 precision, not {self.precision}")
            self.model = quantize_int8(self.model).eval()
        return self

    # -- saving -------------------------------------------------------------------------

    def save_pretrained(self, save_directory: str | Path, weights: str = "fp32") -> Path:
        """Write the model folder `seq2seq-export` writes (without test-set scores);
        `weights="int8"` stores the matrices as int8, a quarter of the size
        (seq2seq.translation.int8_weights)."""
        if isinstance(self.model, Ensemble):
            raise ValueError(
                "an ensemble cannot be saved as one model folder: export each member, or "
                "average their checkpoints into one with seq2seq-average"
            )
        if any(
            type(m).__module__.startswith("torch.ao.nn.quantized") for m in self.model.modules()
        ):
            raise ValueError(
                "a translator quantized for decoding (quantize('int8')) holds torch's packed "
                "int8 layers, which a model folder cannot store: save it before quantizing; "
                "save_pretrained(folder, weights='int8') stores int8 weights"
            )
        folder = write_model_folder(
            save_directory,
            self.model,
            (self.tokenizer_type, self.src_tokenizer, self.tgt_tokenizer),
            self.config,
            self.metadata,
            self.shortlist.state() if self.shortlist is not None else None,
            weights,
        )
        _, _, _, description = read_model_folder(folder)  # the card shows what was written
        card = model_card(description, self.model.num_parameters())
        (folder / "README.md").write_text(card, encoding="utf-8")
        return folder

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | None = None,
        revision: str | None = None,
        commit_message: str = "Upload seq2seq model",
    ) -> str:
        """Upload the model folder to the Hugging Face Hub repository `repo_id` (created if
        missing); returns the commit's URL."""
        import tempfile

        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder)
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                revision=revision,
                commit_message=commit_message,
            )
        return str(getattr(commit, "commit_url", commit))

    # -- translating --------------------------------------------------------------------

    def hypotheses(
        self,
        lines: Iterable[str],
        search: str = "greedy",
        batch_size: int = BATCH_SENTENCES,
        **search_options: Any,
    ) -> list[list[Hypothesis]]:
        """Token-level hypotheses for each line, in input order, best first; an empty line
        gets one empty hypothesis. `search_options` are the strategy's (beam_size, …)."""
        encoded = [self._encode(line) for line in lines]
        results: list[list[Hypothesis]] = [[Hypothesis([], 0.0)] for _ in encoded]
        device = next(self.model.parameters()).device
        self.model.eval()
        for chunk in self.batches(encoded, batch_size):
            src, lengths = source_tensor([encoded[i] for i in chunk])
            ids, model = None, self.model
            if self.use_shortlist and self.shortlist is not None:
                ids, allowed = self.shortlist.candidates(src)
                model = shortlisted(self.model, ids, allowed)
            with autocast(device, self.precision):
                hyps = generate(model, src.to(device), lengths.to(device), search, **search_options)
            if ids is not None:
                hyps = to_vocabulary(hyps, ids)
            for index, sentence_hyps in zip(chunk, hyps, strict=True):
                results[index] = sentence_hyps or [Hypothesis([], float("-inf"))]
        return results

    def attention(
        self,
        lines: Sequence[str],
        hypotheses: Sequence[Sequence[Hypothesis]],
        batch_size: int = BATCH_SENTENCES,
    ) -> list[list[Any]]:
        """Each line's attention matrices (`[T + 1, S + 1]` tensors), one per hypothesis;
        an empty line has none. Raises AttentionUnavailable for a fixed-vector model."""
        from seq2seq.translation.alignment import attention_matrices

        keys, sources, targets = [], [], []
        for index, (line, hyps) in enumerate(zip(lines, hypotheses, strict=True)):
            ids = self._source_ids(line)
            if not ids:
                continue  # nothing was translated, nothing to attend to
            for hyp in hyps:
                keys.append(index)
                sources.append(ids)
                targets.append(hyp.tokens)
        found: list[list[Any]] = [[] for _ in lines]
        device = next(self.model.parameters()).device
        with autocast(device, self.precision):  # the precision the search ran in
            matrices = attention_matrices(self.model, sources, targets, batch_size=batch_size)
        for index, matrix in zip(keys, matrices, strict=True):
            found[index].append(matrix)
        return found

    def translate(
        self,
        texts: str | Sequence[str],
        *,
        search: str = "greedy",
        nbest: int = 1,
        alignment: bool = False,
        attention: bool = False,
        confidence: bool = False,
        batch_size: int = BATCH_SENTENCES,
        **search_options: Any,
    ) -> Translation | list[Translation]:
        """Translate one text (a Translation) or a list of texts (a list, in order).

        `search`: greedy, beam, sample or a plugin's strategy; `search_options` its
        options (beam_size, length_penalty, …). `nbest` > 1 (beam) fills each result's
        `nbest`; `alignment=True` adds the hard alignment of each hypothesis,
        `attention=True` its soft attention with the source and target token labels,
        `confidence=True` the best one's confidence and its source's flags.
        """
        from seq2seq.translation.alignment import hard_alignment, token_labels

        lines, hyps = self._search(texts, search, nbest, batch_size, search_options)
        alignments = matrices = sources = None
        if alignment or attention:
            found = self.attention(lines, [h[:nbest] for h in hyps], batch_size)
            if alignment:
                alignments = [[hard_alignment(m) for m in line] for line in found]
            if attention:
                matrices = found
                sources = [
                    token_labels(self.src_tokenizer, self._source_ids(line)) if line_found else []
                    for line, line_found in zip(lines, found, strict=True)
                ]
        results = self.translations(hyps, alignments, nbest, matrices, sources)
        if confidence:
            results = self.with_confidence(results, lines, [h[0] for h in hyps], batch_size)
        return results[0] if isinstance(texts, str) else results

    def source_flags(self, line: str) -> list[str]:
        """What makes a source line unlike what the model learnt from: `unknown_source`
        when at least a third of its pieces are unknown to the source vocabulary,
        `long_source` when it has more pieces than 99% of the training sources (older
        checkpoints, without that figure: more than data.max_length)."""
        return self._flags(self._source_ids(line))

    def _flags(self, ids: list[int]) -> list[str]:
        flags = []
        if ids and ids.count(UNK_ID) * 3 >= len(ids):
            flags.append("unknown_source")
        if len(ids) > self.long_source_tokens:
            flags.append("long_source")
        return flags

    @property
    def long_source_tokens(self) -> int:
        """Source pieces beyond which a line is flagged `long_source`."""
        lengths = self.metadata.get("source_lengths") or {}
        fallback = self.config.get("data", {}).get("max_length") or self.max_source_tokens
        return int(lengths.get("p99") or fallback)

    def with_confidence(
        self,
        translations: Sequence[Translation],
        lines: Sequence[str],
        hypotheses: Sequence[Hypothesis],
        batch_size: int = BATCH_SENTENCES,
    ) -> list[Translation]:
        """The translations with their confidence and their source's flags.

        The confidence is each hypothesis' mean log-probability per token (EOS
        included), replayed teacher-forced whatever the search (a beam score is
        length-normalised, a sample's is the draw's); None for an empty source line.
        """
        ids = [self._source_ids(line) for line in lines]
        keys = [i for i, found in enumerate(ids) if found]
        device = next(self.model.parameters()).device
        with autocast(device, self.precision):
            replays = forced_decode(
                self.model,
                [ids[i] for i in keys],
                [hypotheses[i].tokens for i in keys],
                batch_size=batch_size,
            )
        values: list[float | None] = [None] * len(lines)
        for index, replay in zip(keys, replays, strict=True):
            values[index] = round(float(replay.token_logprobs.float().mean()), 4)
        return [
            replace(t, confidence=value, flags=self._flags(source))
            for t, value, source in zip(translations, values, ids, strict=True)
        ]

    # -- scoring given translations -----------------------------------------------------

    def score(
        self, sources: Sequence[str], references: Sequence[str], batch_size: int = BATCH_SENTENCES
    ) -> list[ReferenceScore]:
        """The model's log-probability of each reference given its source (teacher-forced,
        as fairseq's and Sockeye's reference scoring)."""
        if len(sources) != len(references):
            raise ValueError(f"{len(sources)} sources but {len(references)} references")
        src = [self._encode(line) for line in sources]
        tgt = [self.tgt_tokenizer.encode(clean_line(line)) for line in references]
        device = next(self.model.parameters()).device
        with autocast(device, self.precision):
            replays = forced_decode(self.model, src, tgt, batch_size=batch_size)
        return [
            ReferenceScore(float(r.token_logprobs.sum()), len(r.token_logprobs)) for r in replays
        ]


def _hub_download(repo_id: str, options: dict[str, Any]) -> str:
    """A Hub repository's files in the Hub's cache (`options`: revision, token, cache_dir,
    force_download, local_files_only)."""
    from huggingface_hub import snapshot_download

    wanted = ("revision", "cache_dir", "force_download", "local_files_only", "token")
    unknown = sorted(set(options) - set(wanted))
    if unknown:
        raise TypeError(f"from_pretrained: unknown option(s) {', '.join(unknown)}")
    try:
        return snapshot_download(repo_id, **{k: options[k] for k in wanted if k in options})
    except (OSError, ValueError) as exc:  # the Hub's errors derive from these
        raise CheckpointError(
            f"{repo_id}: no such file or folder here, and not downloadable from the "
            f"Hugging Face Hub ({type(exc).__name__}: {exc})"
        ) from None


def translation_payload(path: str | Path) -> dict[str, Any]:
    """A checkpoint's content, refused unless it holds a translation model."""
    payload = load_checkpoint(path)
    if "lm_spec" in payload:
        raise CheckpointError(
            f"{path} holds a character language model (task: lm), not a translation model: "
            "sample from it with seq2seq-sample, or give a translation checkpoint"
        )
    if "model_spec" not in payload or "tokenizers" not in payload:
        raise CheckpointError(f"{path} is not a translation checkpoint (no model_spec)")
    return payload


def _load_model(payload: dict[str, Any], device: str) -> Seq2Seq:
    model = Seq2Seq(ModelSpec(**payload["model_spec"]))
    model.load_state_dict(payload["model"])
    return model.to(device).eval()


def _data_metadata(payload: dict[str, Any]) -> dict[str, Any]:
    """What the checkpoint knows of its training data (source lengths: long_source)."""
    return {"source_lengths": payload["source_lengths"]} if "source_lengths" in payload else {}


def _run_metadata(path: str | Path) -> dict[str, Any]:
    """What a model card can say about the run a checkpoint came from: its training
    command (Hydra's overrides) and how it ended (summary.json); empty if unknown."""
    path = Path(path)
    run = path if path.is_dir() else path.parent
    if run.name == "checkpoints":
        run = run.parent
    metadata: dict[str, Any] = {}
    overrides = run / ".hydra" / "overrides.yaml"
    if overrides.is_file():
        import yaml

        given = yaml.safe_load(overrides.read_text(encoding="utf-8")) or []
        kept = [o for o in given if not str(o).startswith("hydra.")]
        metadata["trained_with"] = " ".join(["python -m seq2seq.train", *map(str, kept)])
    summary = run / "summary.json"
    if summary.is_file():
        import json

        found = json.loads(summary.read_text(encoding="utf-8"))
        keys = ("updates", "wall_s", "stop_reason", "best")
        metadata["run_summary"] = {k: found[k] for k in keys if k in found}
    return metadata


def _vocabulary(tokenizer: Tokenizer) -> list[str]:
    return list(tokenizer.pieces(list(range(tokenizer.vocab_size))))


def _check_same_vocabularies(
    first: Translator, other: Translator, first_path: str | Path, other_path: str | Path
) -> None:
    """Ensemble members must agree on every token id of both sides."""
    for what, mine, theirs in (
        ("source", first.src_tokenizer, other.src_tokenizer),
        ("target", first.tgt_tokenizer, other.tgt_tokenizer),
    ):
        problem = None
        if other.tokenizer_type != first.tokenizer_type:
            problem = (
                f"their {what} tokenizers differ "
                f"('{other.tokenizer_type}' vs '{first.tokenizer_type}')"
            )
        elif theirs.vocab_size != mine.vocab_size:
            problem = (
                f"their {what} vocabularies differ in size "
                f"({theirs.vocab_size} vs {mine.vocab_size})"
            )
        elif _vocabulary(theirs) != _vocabulary(mine):
            problem = f"their {what} tokenizers map ids to different pieces"
        if problem:
            raise ValueError(
                f"cannot ensemble {other_path} with {first_path}: {problem}. Ensemble members "
                "must be trained with the same tokenizers."
            )
