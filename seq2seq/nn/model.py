"""The encoder–decoder: embeddings, encoder, a decoder plugin and the output projection."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from seq2seq import registry
from seq2seq.nn.dropout import SequenceDropout
from seq2seq.nn.encoder import Encoder, EncoderOutput
from seq2seq.nn.initialization import initialize, uniform_all
from seq2seq.nn.recurrent import compile_cells
from seq2seq.tokenizers import PAD_ID

# old state-dict prefix -> new one (the output layer was called "generator")
RENAMED_PARAMETERS = {"generator.": "output_layer."}


@dataclass
class ModelSpec:
    """Everything needed to rebuild the network; stored in every checkpoint."""

    src_vocab_size: int
    tgt_vocab_size: int
    cell: str = "gru"
    cell_options: dict[str, Any] = field(default_factory=dict)
    embedding_size: int = 256
    hidden_size: int = 512
    encoder_hidden_size: int | None = None
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.2
    embedding_dropout: float | None = None  # None: same as dropout
    encoder_output_dropout: float | None = None  # on the encoder's outputs; None: dropout
    variational_dropout: bool = False  # one dropout mask per sentence for every time step
    tie_embeddings: str = "none"  # none | decoder (target embedding = output layer) | all
    decoder: str = "fixed"
    decoder_options: dict[str, Any] = field(default_factory=dict)
    fused: bool = True
    compile_cell: bool | str = False  # false | true (script, else compile) | script | compile
    init: str = "default"  # default | gaussian | xavier | orthogonal (recurrent weights)
    init_std: float = 1.0  # std of the gaussian scheme
    init_range: float = 0.1  # bound of the uniform scheme (all parameters)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> None:
        """Refuse a spec the network cannot honour. The config schema (seq2seq.config) checks
        every model.* value before any data work; what it cannot check stays here: the
        vocabulary sizes (known only once the data is tokenized) that tie_embeddings=all
        needs equal, and the tying choice itself, which a spec built in Python bypasses the
        schema with and which would otherwise tie silently for a misspelt value."""
        _check_tying(self)


def spec_from_options(options: dict[str, Any], src_vocab: int, tgt_vocab: int) -> ModelSpec:
    """A ModelSpec from the `model` config group (its keys are checked by the schema)."""
    spec = ModelSpec(src_vocab_size=src_vocab, tgt_vocab_size=tgt_vocab, **options)
    spec.validate()
    return spec


TIE_CHOICES = ("none", "decoder", "all")


def _check_tying(spec: ModelSpec) -> None:
    if spec.tie_embeddings not in TIE_CHOICES:
        raise ValueError(
            f"model.tie_embeddings must be one of {', '.join(TIE_CHOICES)}; "
            f"got '{spec.tie_embeddings}'"
        )
    if spec.tie_embeddings == "all" and spec.src_vocab_size != spec.tgt_vocab_size:
        raise ValueError(
            "model.tie_embeddings=all needs one joint vocabulary (tokenizer.joint=true); "
            f"the source has {spec.src_vocab_size} entries and the target {spec.tgt_vocab_size}"
        )


class Seq2Seq(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        cell = registry.load("seq2seq.cells", spec.cell)
        encoder_size = spec.encoder_hidden_size or spec.hidden_size
        registry.validate_options(
            "cell",
            spec.cell,
            cell,
            spec.cell_options,
            fixed=(spec.embedding_size, encoder_size),
            source="model.cell_options",
        )
        spec.validate()
        self.tgt_embedding = nn.Embedding(
            spec.tgt_vocab_size, spec.embedding_size, padding_idx=PAD_ID
        )
        self.src_embedding = (
            self.tgt_embedding
            if spec.tie_embeddings == "all"
            else nn.Embedding(spec.src_vocab_size, spec.embedding_size, padding_idx=PAD_ID)
        )
        self.encoder = Encoder(
            cell,
            self.src_embedding,
            encoder_size,
            spec.num_layers,
            spec.bidirectional,
            spec.dropout,
            cell_options=spec.cell_options,
            fused=spec.fused,
            embedding_dropout=spec.embedding_dropout,
            variational_dropout=spec.variational_dropout,
            output_dropout=spec.encoder_output_dropout,
        )
        decoder_factory = registry.load("seq2seq.decoders", spec.decoder)
        decoder_args = dict(
            embedding_size=spec.embedding_size,
            encoder_size=self.encoder.output_size,
            hidden_size=spec.hidden_size,
            cell=cell,
            cell_options=spec.cell_options,
            num_layers=spec.num_layers,
            dropout=spec.dropout,
            fused=spec.fused,
        )
        registry.validate_options(
            "decoder",
            spec.decoder,
            decoder_factory,
            spec.decoder_options,
            framework=decoder_args,
            source="model.decoder_options",
        )
        self.decoder = decoder_factory(**decoder_args, **spec.decoder_options)
        embedding_dropout = spec.embedding_dropout
        if embedding_dropout is None:
            embedding_dropout = spec.dropout
        self.embedding_dropout = SequenceDropout(embedding_dropout, spec.variational_dropout)
        self.output_layer = nn.Linear(self.decoder.output_size, spec.tgt_vocab_size)
        if spec.tie_embeddings != "none":
            if self.decoder.output_size != spec.embedding_size:
                raise ValueError(
                    f"model.tie_embeddings={spec.tie_embeddings} shares the target embedding "
                    f"with the output layer, so the decoder's output size "
                    f"({self.decoder.output_size}) must equal model.embedding_size "
                    f"({spec.embedding_size})"
                )
            self.output_layer.weight = self.tgt_embedding.weight
        if spec.init == "uniform":
            uniform_all(self, spec.init_range)
        elif spec.init != "default":
            initialize(self.encoder.rnn, spec.init, std=spec.init_std)
            initialize(self.decoder, spec.init, std=spec.init_std)
        if spec.compile_cell:
            compile_cells(self, spec.compile_cell)

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        return self.encoder(src, src_lengths)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced logits [B, T, V] for target inputs tgt_in (BOS-prefixed)."""
        return self.output_layer(self.features(src, src_lengths, tgt_in))

    def features(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced decoder features [B, T, H]: what the output layer scores
        (training scores them together with the loss: `nn.output_loss`)."""
        enc = self.encode(src, src_lengths)
        state = self.decoder.init_state(enc)
        emb = self.embedding_dropout(self.tgt_embedding(tgt_in))
        return self.decoder(emb, enc, state)

    def init_state(self, enc: EncoderOutput):
        """The decoder's state before the first target token (search reorders it by rows)."""
        return self.decoder.init_state(enc)

    def attention(self, state) -> Tensor | None:
        """Attention weights [B, S] of the last `decode_step`, or None (fixed-vector decoder)."""
        weights = getattr(self.decoder, "attention_weights", None)
        return weights(state) if weights is not None else None

    def decode_step(self, tokens: Tensor, enc: EncoderOutput, state) -> tuple[Tensor, Any]:
        """Log-probabilities [B, V] of the next token given the previous tokens [B]."""
        features, state = self.step_features(tokens, enc, state)
        return torch.log_softmax(self.output_layer(features).float(), dim=-1), state

    def step_features(self, tokens: Tensor, enc: EncoderOutput, state) -> tuple[Tensor, Any]:
        """The decoder's output features [B, H] after the previous tokens [B] (what the
        output layer scores; a vocabulary shortlist scores only some of it)."""
        return self.decoder.step(self.tgt_embedding(tokens), enc, state)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Checkpoints written before a parameter was renamed still load: torch calls this
        before loading the children, so renaming the keys here is enough."""
        for old, new in RENAMED_PARAMETERS.items():
            for key in [k for k in state_dict if k.startswith(prefix + old)]:
                state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
