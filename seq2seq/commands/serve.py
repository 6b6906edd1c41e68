"""`seq2seq-serve`: translate over HTTP, with a web page at /.

    seq2seq-serve --model en-de=models/en-de
    seq2seq-serve --config serve.yaml

Each --model is NAME=PATH (a model folder, run folder or checkpoint); a config file
(YAML) gives the same with per-model settings and limits:

    models:
      en-de: {checkpoint: models/en-de, search: beam, beam_size: 5}
    limits: {max_texts: 64, max_chars: 1000, max_body_bytes: 1000000, timeout_s: 30}
    batching: {max_batch_size: 32, max_wait_ms: 5}

The API key, when wanted, comes from the environment (SEQ2SEQ_API_KEY) or a file
(--api-key-file), never from the command line, where other users could read it.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from seq2seq.commands.common import (
    add_device_argument,
    check_device,
    command_parser,
    positive_int,
    run_cli,
)
from seq2seq.serving.settings import checked_settings, read_settings_file


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("seq2seq-serve", __doc__)
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a model to serve under NAME (repeatable)",
    )
    parser.add_argument("--config", metavar="FILE", help="server settings (YAML)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    add_device_argument(parser)
    parser.add_argument(
        "--max-batch-size", type=positive_int, help="sentences decoded together (default: 32)"
    )
    parser.add_argument(
        "--max-wait-ms", type=float, help="how long a batch waits to fill (default: 5)"
    )
    parser.add_argument(
        "--no-batching", action="store_true", help="decode each request alone, in arrival order"
    )
    parser.add_argument(
        "--api-key-file", help="file holding the API key (else SEQ2SEQ_API_KEY, if set)"
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser pages from ORIGIN to call the API (repeatable; default: none)",
    )
    return parser


def settings_from(args: argparse.Namespace):
    """ServeSettings from the config file, then the command line on top."""
    data = read_settings_file(args.config) if args.config else {}
    models = dict(data.get("models") or {})
    for item in args.model:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--model expects NAME=PATH, got {item!r}")
        models[name] = {"checkpoint": path, "device": args.device}
    if not models:
        raise ValueError("nothing to serve: give --model NAME=PATH or --config FILE")
    data["models"] = models
    batching = dict(data.get("batching") or {})
    if args.max_batch_size:
        batching["max_batch_size"] = args.max_batch_size
    if args.max_wait_ms is not None:
        batching["max_wait_ms"] = args.max_wait_ms
    if args.no_batching:
        batching["enabled"] = False
    data["batching"] = batching
    if args.api_key_file:
        data["api_key"] = Path(args.api_key_file).read_text(encoding="utf-8").strip()
    elif os.environ.get("SEQ2SEQ_API_KEY"):
        data["api_key"] = os.environ["SEQ2SEQ_API_KEY"]
    if args.cors_origin:
        data["cors_origins"] = args.cors_origin
    return checked_settings(data, args.config or "the command line")


def load_models(settings) -> dict:
    """Every model, loaded before the server starts listening (a bad path fails now)."""
    from seq2seq.translation.translator import Translator

    loaded = {}
    for name, entry in settings.models.items():
        device = check_device(entry.device, f"models.{name}.device")
        loaded[name] = Translator.from_pretrained(
            entry.checkpoint, device=str(device), precision=entry.precision
        )
    return loaded


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    translators = load_models(settings)

    import uvicorn

    from seq2seq.serving.app import create_app

    app = create_app(settings, translators)
    # uvicorn stops taking connections on SIGTERM/SIGINT, lets in-flight requests finish
    # (up to the graceful timeout), then returns: the command exits 0. After its shutdown
    # uvicorn raises the signal again for the handler it found; that handler must not
    # kill the process (the default) nor raise KeyboardInterrupt (Python's for SIGINT).
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="info",
        timeout_graceful_shutdown=settings.limits.timeout_s,
    )
    return 0


def _stopped(signum: int, frame: object) -> None:
    """A stop asked for, after the graceful shutdown: nothing left to do."""


def main(argv: list[str] | None = None) -> None:
    run_cli(lambda: _main(argv))


if __name__ == "__main__":
    main()
