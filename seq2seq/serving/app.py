"""The HTTP app: FastAPI routes over loaded Translators, with limits, an optional API
key, metrics and the web page.

FastAPI (on uvicorn) because it is the well-kept ASGI stack that gives typed request
checking (pydantic), OpenAPI docs at /docs and async request handling for free, and
uvicorn drains in-flight requests on SIGTERM.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import unicodedata
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from seq2seq.search import check_options
from seq2seq.serving.batching import DynamicBatcher
from seq2seq.serving.limits import BodySizeLimit
from seq2seq.serving.metrics import ServerMetrics
from seq2seq.serving.schemas import (
    ErrorResponse,
    ModelInfo,
    TranslateRequest,
    TranslateResponse,
)
from seq2seq.serving.settings import ModelEntry, ServeSettings
from seq2seq.translation.alignment import AttentionUnavailable, require_attention
from seq2seq.translation.translator import Translator

STATIC = Path(__file__).parent / "static"


@dataclass
class ServedModel:
    name: str
    translator: Translator
    entry: ModelEntry
    batcher: DynamicBatcher
    has_attention: bool = True

    def info(self) -> ModelInfo:
        metadata = self.translator.metadata
        data = self.translator.config.get("data", {})
        return ModelInfo(
            name=self.name,
            source_language=data.get("src_lang"),
            target_language=data.get("tgt_lang"),
            recipe=metadata.get("trained_with"),
            scores=metadata.get("scores") or [],
            defaults={
                "search": self.entry.search,
                "beam_size": self.entry.beam_size,
                "length_penalty": self.entry.length_penalty,
            },
            attention=self.has_attention,
        )


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status)


class RequestProblem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _field(loc: tuple) -> str:
    """`texts[3]` for pydantic's ('body', 'texts', 3)."""
    parts = [p for p in loc if p != "body"]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def validation_message(exc: RequestValidationError) -> tuple[int, str]:
    problems = []
    for problem in exc.errors():
        if problem.get("type") == "json_invalid":
            return 400, f"the body is not valid JSON: {problem.get('ctx', {}).get('error', '')}"
        if problem.get("type") == "model_attributes_type" or problem.get("loc") == ("body",):
            return 400, 'the body must be a JSON object, e.g. {"texts": ["Hello."]}'
        problems.append(f"{_field(problem['loc'])}: {problem['msg']}")
    return 422, "; ".join(problems)


def check_texts(texts: list[str], limits) -> None:
    """The limits and the content rules, each problem named by its text's index."""
    if not texts:
        raise RequestProblem(422, "texts is empty: give at least one text")
    if len(texts) > limits.max_texts:
        raise RequestProblem(
            413, f"texts has {len(texts)} entries; at most {limits.max_texts} per request"
        )
    for index, text in enumerate(texts):
        if len(text) > limits.max_chars:
            raise RequestProblem(
                413, f"texts[{index}] has {len(text)} characters; at most {limits.max_chars}"
            )
        if not text.strip():
            raise RequestProblem(422, f"texts[{index}] is empty")
        for position, char in enumerate(text):
            if unicodedata.category(char) in ("Cc", "Cs"):
                raise RequestProblem(
                    422,
                    f"texts[{index}] contains the control character U+{ord(char):04X} at "
                    f"position {position}; send one line of plain text per entry",
                )


def decoding_options(body: TranslateRequest, entry: ModelEntry, limits) -> dict[str, Any]:
    """Translator.translate keyword arguments: the request's, else the model's defaults."""
    search = body.search or entry.search
    options: dict[str, Any] = {
        "search": search,
        "alignment": body.alignment,
        "attention": body.attention,
    }
    if body.nbest > limits.max_nbest:
        raise RequestProblem(413, f"nbest is {body.nbest}; at most {limits.max_nbest}")
    if search == "beam":
        beam_size = body.beam_size or entry.beam_size
        if beam_size > limits.max_beam_size:
            raise RequestProblem(413, f"beam_size is {beam_size}; at most {limits.max_beam_size}")
        if body.nbest > beam_size:
            raise RequestProblem(422, f"nbest ({body.nbest}) cannot exceed beam_size ({beam_size})")
        length_penalty = entry.length_penalty
        if body.length_penalty is not None:
            length_penalty = body.length_penalty
        options.update(beam_size=beam_size, length_penalty=length_penalty, nbest=body.nbest)
    else:
        given = [k for k in ("beam_size", "length_penalty") if getattr(body, k) is not None]
        if body.nbest != 1:
            given.append("nbest")
        if given:
            raise RequestProblem(422, f"{', '.join(given)} need search 'beam' (got '{search}')")
    strategy_options = {
        k: v for k, v in options.items() if k not in ("search", "alignment", "attention")
    }
    try:
        check_options(search, {k: v for k, v in strategy_options.items() if k != "nbest"})
    except ValueError as exc:
        raise RequestProblem(422, str(exc)) from None
    return options


def create_app(settings: ServeSettings, translators: dict[str, Translator]) -> FastAPI:
    """The app serving `translators` (loaded already, by name) as `settings` says."""
    metrics = ServerMetrics()
    served: dict[str, ServedModel] = {}
    for name, translator in translators.items():
        entry = settings.models[name]

        def run(texts: list[str], options: dict[str, Any], translator=translator) -> list:
            return translator.translate(texts, **options)

        def on_batch(sentences: int, seconds: float, name=name) -> None:
            metrics.batch_done(name, sentences)

        batcher = DynamicBatcher(
            run,
            settings.batching.max_batch_size,
            settings.batching.max_wait_ms,
            enabled=settings.batching.enabled,
            on_batch=on_batch,
        )
        served[name] = ServedModel(name, translator, entry, batcher, _has_attention(translator))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for model in served.values():
            model.batcher.start()
        yield
        for model in served.values():
            await model.batcher.stop()

    app = FastAPI(
        title="seq2seq translation server",
        version=__import__("seq2seq").__version__,
        lifespan=lifespan,
        responses={
            "4XX": {"model": ErrorResponse, "description": "the request is at fault"},
        },
    )
    app.state.metrics = metrics
    app.state.served = served

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(*validation_message(exc))

    @app.exception_handler(RequestProblem)
    async def request_problem(request: Request, exc: RequestProblem) -> JSONResponse:
        return error(exc.status, str(exc))

    @app.exception_handler(HTTPException)
    async def http_problem(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # the framework could not decode the bytes: JSON must be UTF-8
            return error(400, "the body is not valid JSON: it must be UTF-8 encoded text")
        return error(exc.status_code, str(exc.detail))

    @app.middleware("http")
    async def key_and_metrics(request: Request, call_next):
        started = time.perf_counter()
        path = request.url.path
        if settings.api_key and not _open(path) and not _key_matches(request, settings.api_key):
            response = error(
                401, "missing or wrong API key: send it as 'Authorization: Bearer KEY'"
            )
        else:
            counted = metrics.in_flight if path == "/v1/translate" else None
            if counted is not None:
                counted.inc()
            try:
                response = await call_next(request)
            except Exception:  # never a traceback to the client
                response = error(500, "internal error while answering the request")
            finally:
                if counted is not None:
                    counted.dec()
        route = path if path in ("/v1/translate", "/v1/models", "/health", "/metrics") else "other"
        metrics.requests.labels(route, str(response.status_code)).inc()
        if response.status_code >= 400:
            metrics.errors.labels("4xx" if response.status_code < 500 else "5xx").inc()
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        return response

    @app.post("/v1/translate", response_model=TranslateResponse, response_model_exclude_none=True)
    async def translate(body: TranslateRequest) -> dict:
        """Translate `texts`, in order: one translation per text."""
        model = _pick(served, body.model)
        check_texts(body.texts, settings.limits)
        if (body.alignment or body.attention) and not model.has_attention:
            wanted = "alignment" if body.alignment else "attention"
            raise RequestProblem(
                422, f"model {model.name!r} has no attention decoder: {wanted} is not available"
            )
        options = decoding_options(body, model.entry, settings.limits)
        try:
            results = await asyncio.wait_for(
                model.batcher.submit(body.texts, options), timeout=settings.limits.timeout_s
            )
        except TimeoutError:
            raise RequestProblem(
                503, f"not translated within {settings.limits.timeout_s:g} s; try again later"
            ) from None
        return {"model": model.name, "translations": [t.to_dict() for t in results]}

    @app.get("/v1/models", response_model=list[ModelInfo])
    async def models() -> list[ModelInfo]:
        """The served models: name, language pair, recipe and scores from the model card."""
        return [model.info() for model in served.values()]

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "models": sorted(served)}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
        )
    app.add_middleware(BodySizeLimit, max_bytes=settings.limits.max_body_bytes)
    return app


def _has_attention(translator: Translator) -> bool:
    """Whether the model's decoder attends (one cheap decode step tells)."""
    try:
        require_attention(translator.model)
    except AttentionUnavailable:
        return False
    return True


def _open(path: str) -> bool:
    """Paths without data behind them: the health check and the page with its assets."""
    return path in ("/health", "/") or path.startswith("/static/")


def _key_matches(request: Request, key: str) -> bool:
    """Constant-time comparison of the key sent (Bearer token or X-API-Key) with ours."""
    sent = request.headers.get("x-api-key", "")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        sent = auth[7:].strip()
    return hmac.compare_digest(sent.encode("utf-8"), key.encode("utf-8"))


def _pick(served: dict[str, ServedModel], name: str | None) -> ServedModel:
    if name is None:
        if len(served) == 1:
            return next(iter(served.values()))
        raise RequestProblem(
            422, f"model is required when several are served: {', '.join(sorted(served))}"
        )
    if name not in served:
        raise RequestProblem(404, f"no model named {name!r}; served: {', '.join(sorted(served))}")
    return served[name]
