"""`python -m seq2seq.data.prepare` / `python data_scripts/prepare.py`: prepare public corpora."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from seq2seq.commands.parsing import command_parser
from seq2seq.data.corpora import PUBLIC, default_root
from seq2seq.data.prepare import prepare_command, prepare_corpus
from seq2seq.data.reading import CorpusError


def _build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "python data_scripts/prepare.py",
        description="Download (or take already-downloaded files) and prepare public corpora\n"
        "into the SEQ2SEQ_DATA layout, verifying SHA-256 checksums.\n"
        "`python -m seq2seq.data.prepare` takes the same arguments.",
        epilog="examples:\n"
        "  python data_scripts/prepare.py all --root data\n"
        "  python data_scripts/prepare.py multi30k --root data --from-dir ~/Downloads/multi30k\n"
        "  python data_scripts/prepare.py tatoeba_en_es --root data --from-dir spa-eng.zip\n"
        "sources: " + "; ".join(corpus.sources for corpus in PUBLIC.values()),
    )
    parser.add_argument("corpus", choices=[*PUBLIC, "all"], help="corpus to prepare")
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="data root to write into (default: $SEQ2SEQ_DATA, else ./data)",
    )
    parser.add_argument(
        "--from-dir",
        default=None,
        help="offline: folder (or spa-eng.zip / spa.txt file) with already-downloaded raw files",
    )
    parser.add_argument(
        "--no-verify", action="store_true", help="keep files whose checksums differ (warn only)"
    )
    parser.add_argument(
        "--force", action="store_true", help="re-prepare files that already exist and verify"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only print warnings and errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s: %(message)s"
    )
    root = args.root if args.root is not None else default_root()
    names = list(PUBLIC) if args.corpus == "all" else [args.corpus]
    status = 0
    for name in names:
        corpus = PUBLIC[name]
        try:
            paths = prepare_corpus(
                corpus, root, from_dir=args.from_dir, verify=not args.no_verify, force=args.force
            )
        except CorpusError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
        except OSError as exc:
            print(
                f"error: {name}: download failed ({exc}). Without internet, download "
                f"{corpus.sources} elsewhere and run:\n  "
                f"{prepare_command(name, root, 'DOWNLOADED_DIR_OR_FILE')}",
                file=sys.stderr,
            )
            status = 1
        else:
            if not args.quiet:
                print(f"{name}: {len(paths)} file(s) ready under {root}")
    return status


if __name__ == "__main__":
    sys.exit(main())
