"""The parser every `vidrelay` command is built with: usage errors in one line, every option's default in its help,
and --debug accepted after the command too."""

from __future__ import annotations

import argparse
from typing import Any

from vidrelay.failures import USAGE


class Parser(argparse.ArgumentParser):
    """Usage errors in one line, with where to read more (argparse prints the whole usage first)."""

    def error(self, message: str) -> Any:
        self.exit(USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default, unless the help already says what happens without it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.required or "default" in text:
            return text
        if action.default is None or action.default is False or action.default in (argparse.SUPPRESS, []):
            return text
        return f"{text} (default: %(default)s)"


def command(sub: Any, name: str, help_text: str, *, parents: list[argparse.ArgumentParser] | None = None) -> Parser:
    """A subcommand with the CLI's parser and help style, and --debug accepted after the command too."""
    parser: Parser = sub.add_parser(
        name,
        help=help_text,
        description=help_text[0].upper() + help_text[1:] + ".",
        formatter_class=HelpFormatter,
        parents=[DEBUG, *(parents or [])],
    )
    return parser


def _debug_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand that is not given --debug leaves the top-level value alone.
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parent


DEBUG = _debug_parent()
