"""Typed domain errors. They are turned into HTTP/OpenAI error bodies in exactly one place (the api function)."""

from __future__ import annotations

from typing import Any


class VidrelayError(Exception):
    """Base of every error vidrelay raises on purpose."""

    status_code = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(VidrelayError):
    """A request field is wrong. The message names the field, what was given and what is allowed."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_value"

    def __init__(
        self,
        field: str,
        given: Any = None,
        allowed: str | None = None,
        *,
        message: str | None = None,
        code: str | None = None,
    ) -> None:
        if message is None:
            shown = _show(given)
            message = f"Invalid value for '{field}': {shown}." if given is not None else f"Missing '{field}'."
            if allowed:
                message += f" Allowed: {allowed}."
        super().__init__(message, param=field, code=code)
        self.field = field
        self.given = given
        self.allowed = allowed


class Unauthorized(VidrelayError):
    status_code = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class PaymentRequired(VidrelayError):
    status_code = 402
    error_type = "insufficient_quota"
    code = "budget_exceeded"


class JobNotFound(VidrelayError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"

    def __init__(self, video_id: str) -> None:
        super().__init__(f"No video found with id '{video_id}'.", param="video_id")


class NotFound(VidrelayError):
    """Something other than a video (an endpoint, a delivery) does not exist for this tenant."""

    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class RouteNotFound(VidrelayError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowed(VidrelayError):
    """The path exists, with other methods: answered 405 with `Allow`."""

    status_code = 405
    error_type = "invalid_request_error"
    code = "method_not_allowed"

    def __init__(self, method: str, path: str, allowed: list[str]) -> None:
        super().__init__(f"{method} is not allowed on {path}; it takes {', '.join(allowed)}.", param=None)
        self.allowed = allowed


class NotOffered(VidrelayError):
    """A feature of the OpenAI API that the upstreams behind vidrelay cannot do. 400, not 5xx: a client must
    not retry it, and not 404: the route exists."""

    status_code = 400
    error_type = "invalid_request_error"


class Conflict(VidrelayError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(VidrelayError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "payload_too_large"


class RateLimited(VidrelayError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotReady(VidrelayError):
    """Content asked for before the video is completed (OpenAI answers 400 here too)."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "video_not_ready"


# Store ----------------------------------------------------------------------------------------------------------
# Raised by the stores, which know records, not users: the use cases turn them into what a client is told.


class StaleJob(Exception):
    """A conditional write lost: the job moved on (another worker, a duplicate message). Never an error to users."""


class IdempotentReplay(Exception):
    """The Idempotency-Key already names a job made from the same request: that job is the answer."""

    def __init__(self, video_id: str) -> None:
        super().__init__(video_id)
        self.video_id = video_id


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key names a job made from another request body."""


class LimitReached(Exception):
    """A conditional counter refused a new job: `kind` is "spend" (the monthly budget) or "rate" (per minute)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


# Upstream ---------------------------------------------------------------------------------------------------------


class UpstreamError(Exception):
    """Base of upstream failures; `retryable` says whether the same call may be tried again."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str = "upstream_error",
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.retry_after_s = retry_after_s
        # Which account answered (its name, never its key): set by the failover loop.
        self.account: str | None = None


class UpstreamUnavailable(UpstreamError):
    """The upstream refused before it could have accepted the task (connection refused, 429, 5xx without a task
    id). Safe to retry: nothing can have been billed."""

    retryable = True


class UpstreamRejected(UpstreamError):
    """The upstream answered 4xx: the request itself is wrong; retrying will not help."""


class UpstreamAmbiguous(UpstreamError):
    """The request may have reached the upstream (timeout after the body was sent). Never retried blindly."""


class UpstreamResultGone(UpstreamError):
    """The upstream no longer has the task or its result (its retention ran out)."""


# Transfer ---------------------------------------------------------------------------------------------------------


class TransferError(Exception):
    """Moving the bytes failed. `retryable` transfers are tried again through SQS redelivery."""

    retryable = True
    code = "transfer_failed"


class NotAnMp4(TransferError):
    """The bytes are not an MP4 (no `ftyp` box first). Fetching again will not change that."""

    retryable = False
    code = "upstream_not_mp4"


class TruncatedDownload(TransferError):
    """Fewer (or more) bytes arrived than the upstream announced, or the MP4 boxes end mid-way."""

    code = "upstream_truncated"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
