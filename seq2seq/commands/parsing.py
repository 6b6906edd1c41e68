"""The parser every command is built with, and the conventions it brings.

Kept free of torch and the models, so that quick commands (seq2seq-results, prepare)
start quickly: `command_parser` gives no abbreviated flags, defaults in --help,
`--version`, and argparse's errors in one line with the flag a typo meant.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from seq2seq import __version__


def version_line(prog: str) -> str:
    """What `PROG --version` prints: the command's name and the package version."""
    return f"{prog} {__version__}"


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate a mistyped or abbreviated `word` most likely meant, if any is close.

    Candidates that `word` abbreviates come first: `--beam` means `--beam-size`.
    """
    candidates = list(candidates)
    longer = [c for c in candidates if c.startswith(word) and c != word]
    found = difflib.get_close_matches(word, longer or candidates, n=1, cutoff=0 if longer else 0.6)
    return found[0] if found else None


def check_choice(flag: str, value: str, available: Sequence[str], what: str) -> None:
    """A ValueError when `value` of `flag` is not one of `available`: it names the value,
    the likeliest intended one and every allowed one, in one line."""
    if value in available:
        return
    guess = did_you_mean(value, available)
    hint = f" (did you mean {guess}?)" if guess else ""
    raise ValueError(f"{flag} {value}: no such {what}{hint}; available: {', '.join(available)}")


def _has_default(action: argparse.Action) -> bool:
    """Whether --help should state the action's default (None, False and [] say nothing)."""
    default = action.default
    if default is None or default is False or default is argparse.SUPPRESS:
        return False
    return default not in ([], "")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions keep their line breaks (their examples stay readable), and every
    option says its default, so --help alone tells what an omitted flag does."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or "%(default)" in text or not _has_default(action):
            return text  # a help text that words its own default keeps it
        return f"{text} (default: %(default)s)"


class CommandParser(argparse.ArgumentParser):
    """The conventions every command shares, subcommands included (argparse builds them
    with the parent's class): no abbreviations, defaults in --help, and mistakes
    reported in one line with a suggestion instead of a usage dump."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # --beam must not silently mean --beam-size
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def option_names(self) -> list[str]:
        """Every flag a user may type here or in a subcommand (hidden ones left out)."""
        names: list[str] = []
        for action in self._actions:
            if action.help is not argparse.SUPPRESS:
                names += action.option_strings
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    names += sub.option_names() if isinstance(sub, CommandParser) else []
        return list(dict.fromkeys(names))

    def parse_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """argparse's parse_args, with a suggestion for the first unknown flag."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(self._unrecognized(extras))
        return parsed

    def _unrecognized(self, extras: list[str]) -> str:
        """The first unknown flag, and the flag it was probably meant to be."""
        flags = [a for a in extras if a.startswith("-") and a != "-"]
        if not flags:
            return f"unrecognized argument{'s' if len(extras) > 1 else ''} {' '.join(extras)}"
        flag = flags[0].partition("=")[0]
        guess = did_you_mean(flag, self.option_names())
        return f"unrecognized argument {flag}" + (f" (did you mean {guess}?)" if guess else "")

    def error(self, message: str) -> NoReturn:
        """One line naming the mistake and a pointer to --help; exit status 2."""
        self.exit(2, f"{self.prog}: error: {message}\nsee `{self.prog} --help`\n")


def command_parser(
    prog: str, description: str | None = None, **kwargs: Any
) -> argparse.ArgumentParser:
    """The parser every command starts from, so that all of them behave alike: no
    abbreviated flags, defaults shown in --help, `--version`, and one-line errors that
    suggest the flag a typo meant. `kwargs` go to argparse.ArgumentParser."""
    parser = CommandParser(prog=prog, description=description, **kwargs)
    parser.add_argument(
        "--version",
        action="version",
        version=version_line(prog),
        help="print the command's name and version, then exit",
    )
    return parser
