"""The JSON the HTTP API takes and gives. Field names are a public contract: clients are
written against them, so they only ever grow."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TranslateRequest(BaseModel):
    """`POST /v1/translate`. Only `texts` is required; `model` may be left out when one
    model is served; search options left out take the model's defaults."""

    model_config = ConfigDict(extra="forbid", strict=True)

    texts: list[str] = Field(description="the texts to translate, one sentence each")
    model: str | None = Field(None, description="a name from GET /v1/models")
    search: Literal["greedy", "beam", "sample"] | None = None
    beam_size: int | None = Field(None, ge=1, description="beam search: hypotheses kept")
    nbest: int = Field(1, ge=1, description="beam search: hypotheses returned per text")
    length_penalty: float | None = Field(None, description="beam search: GNMT alpha")
    alignment: bool = Field(False, description="also return each hypothesis' hard alignment")
    attention: bool = Field(
        False,
        description="also return each hypothesis' soft attention with its source and target tokens",
    )


class Hypothesis(BaseModel):
    text: str
    score: float = Field(description="log-probability (beam: length-normalised)")
    alignment: list[tuple[int, int]] | None = Field(
        None, description="(source token, target token) pairs, when asked for"
    )
    source_tokens: list[str] | None = Field(
        None, description="with attention: the source's subword tokens, then </s>"
    )
    target_tokens: list[str] | None = Field(
        None, description="with attention: the translation's subword tokens, then </s>"
    )
    attention: list[list[float]] | None = Field(
        None,
        description="when asked for: one row per target token, one weight per source token; "
        "each row sums to 1",
    )


class Translation(Hypothesis):
    nbest: list[Hypothesis] | None = Field(None, description="when nbest > 1, best first")


class TranslateResponse(BaseModel):
    model: str
    translations: list[Translation]


class ModelInfo(BaseModel):
    name: str
    source_language: str | None
    target_language: str | None
    recipe: str | None = Field(None, description="the training command, when known")
    scores: list[dict] = Field(default_factory=list, description="from the model card")
    defaults: dict
    attention: bool = Field(
        True, description="whether the model has attention (alignment and attention need it)"
    )


class ErrorBody(BaseModel):
    status: int
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
