"""The `vidrelay` command: the local stack and simulator, every API operation (videos, deliveries, webhook
endpoints, usage), API keys and a webhook listener.

API commands find the API through --api-url/--api-key, else VIDRELAY_API_URL/VIDRELAY_API_KEY, else the running
local stack (.vidrelay/local.json in this folder or one above)."""

from __future__ import annotations

import os
import sys
import traceback

from vidrelay.commands.parsing import HelpFormatter, Parser
from vidrelay.failures import FAILED, INTERRUPTED, explain, one_line


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
