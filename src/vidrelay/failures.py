"""What the CLI tells a user when something expected goes wrong: one line saying what happened and what to do.

Commands raise `CliError` for what they detect themselves; `explain` turns the exceptions of the libraries below
(httpx, botocore, the file system) and the API's errors into the same kind of line. `vidrelay --debug` shows the
traceback as well.
"""

from __future__ import annotations

import errno
from typing import Any

# Exit codes (README, "Command line"): 1 a failure, 2 a usage error, 3 a wait that ran out of time (the job goes
# on), 130 interrupted (Ctrl-C).
FAILED = 1
USAGE = 2
TIMED_OUT = 3
INTERRUPTED = 130


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class Explained(Exception):
    """An error that knows the line to tell the user (the API client's errors override `explain`)."""

    def explain(self) -> str:
        return one_line(self)


def one_line(text: Any) -> str:
    return " ".join(str(text).split())


def explain(exc: BaseException) -> CliError | None:
    """The line for an expected failure, or None for a bug (which gets the generic line)."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return CliError("interrupted", INTERRUPTED)
    if isinstance(exc, Explained):
        return CliError(exc.explain())
    botocore = _botocore(exc)
    if botocore is not None:
        return botocore
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return CliError("the port is in use (another vidrelay running?): stop it or pass --port", USAGE)
    if isinstance(exc, OSError) and exc.filename is not None:
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
        return CliError(f"{exc.filename}: {reason}")
    return None


def _botocore(exc: BaseException) -> CliError | None:
    try:
        from botocore import exceptions as boto
    except ImportError:  # pragma: no cover - botocore is a dependency
        return None
    if isinstance(exc, boto.NoCredentialsError):
        return CliError(
            "no AWS credentials found: configure them (`aws configure`, AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY) for the account of the deployed stack"
        )
    if isinstance(exc, boto.NoRegionError):
        return CliError(
            "no AWS region configured: pass --region, or set AWS_DEFAULT_REGION or a region in `aws configure`"
        )
    if isinstance(exc, boto.EndpointConnectionError | boto.ConnectTimeoutError):
        return CliError(f"cannot reach AWS at {exc.kwargs.get('endpoint_url', '?')}: check the network or the region")
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), one_line(error.get("Message", ""))
        if code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"):
            return CliError(f"AWS refused the credentials ({code}: {message}); refresh them and try again")
        return CliError(f"AWS answered {code}: {message}")
    if isinstance(exc, boto.BotoCoreError):
        return CliError(f"AWS call failed: {one_line(exc)}")
    return None
