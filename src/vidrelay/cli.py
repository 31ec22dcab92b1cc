"""The `vidrelay` command: the local stack and simulator, every API operation (videos, deliveries, webhook
endpoints, usage), API keys and a webhook listener.

API commands find the API through --api-url/--api-key, else VIDRELAY_API_URL/VIDRELAY_API_KEY, else the running
local stack (.vidrelay/local.json in this folder or one above)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Any

from vidrelay.failures import FAILED, INTERRUPTED, USAGE, explain, one_line


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


def build_parser() -> Parser:
    from vidrelay.commands import keys, listen, local, usage, videos, webhooks

    parser = Parser(prog="vidrelay", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "--debug",
        action="store_true",
        default=os.environ.get("VIDRELAY_DEBUG", "").lower() in ("1", "true", "yes"),
        help="show the traceback of a failure, not only its one-line explanation (also: VIDRELAY_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for module in (local, videos, webhooks, usage, keys, listen):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except SystemExit:
        raise
    except BaseException as exc:
        action = getattr(args, "endpoints_command", None) or getattr(args, "keys_command", None)
        return report(exc, debug=bool(args.debug), command=f"{args.command} {action}" if action else args.command)


def report(exc: BaseException, *, debug: bool, command: str) -> int:
    """One line on stderr for any failure (and the traceback with --debug); the exit code says what kind."""
    if isinstance(exc, BrokenPipeError):  # `vidrelay jobs | head`: the reader left, nothing to say
        return FAILED
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    known = explain(exc)
    if known is not None:
        print(f"vidrelay {command}: {known.message}", file=sys.stderr)
        return known.exit_code
    if isinstance(exc, KeyboardInterrupt):  # pragma: no cover - explain knows it
        return INTERRUPTED
    hint = "" if debug else "; run it again with --debug for the traceback"
    print(f"vidrelay {command}: unexpected {type(exc).__name__}: {one_line(exc)}{hint}", file=sys.stderr)
    return FAILED


if __name__ == "__main__":
    sys.exit(main())
