"""HTTP pieces every dialect shares: the OpenAI error envelope, bearer checks, dropping a connection on purpose,
reading a multipart body in the order its parts arrived, and the quiet request handler."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import BadRequest
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response


def error_response(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """OpenAI's error envelope: ``{"error": {"message", "type", "param", "code"}}``."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def server_error() -> Response:
    return error_response(
        500, "The server had an error while processing your request. Sorry about that!", type_="server_error"
    )


def unauthorized() -> Response:
    return error_response(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        code="missing_api_key",
    )


def bearer_of(request: Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def abort_connection(environ: dict[str, Any]) -> None:
    """Drop the client's connection without (finishing) an answer.

    SO_LINGER 0 makes the eventual close an RST; raising ConnectionResetError is what werkzeug's dev server
    treats as a dropped connection, so it neither logs a traceback nor tries to send a 500 afterwards.
    """
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raise ConnectionResetError("simulator fault: connection dropped on purpose")


def cut_after(body: Iterator[bytes], keep: int, reset_environ: dict[str, Any] | None) -> Iterator[bytes]:
    """Pass on the first ``keep`` bytes, then end (connection closes: truncated) or reset the connection."""
    sent = 0
    for chunk in body:
        piece = chunk[: keep - sent]
        if piece:
            yield piece
            sent += len(piece)
        if sent >= keep:
            break
    if reset_environ is not None:
        abort_connection(reset_environ)


def rejected_submit(fault: str, value: Any, environ: dict[str, Any]) -> Response:
    """The answer of a struggling upstream to a submit it never looked at (``submit_500/429/reset``)."""
    if fault == "submit_500":
        return server_error()
    if fault == "submit_429":
        return error_response(
            429,
            "Rate limit reached for requests. Please try again later.",
            type_="requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(value)},
        )
    abort_connection(environ)
    raise AssertionError("unreachable: abort_connection raises")


@dataclass(frozen=True)
class Part:
    """One multipart part as received: a text field (no filename) or a file."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes

    @property
    def is_file(self) -> bool:
        return self.filename is not None

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def multipart_parts(request: Request) -> list[Part]:
    """Every part of a multipart/form-data body, in arrival order.

    werkzeug's ``request.form`` / ``request.files`` group parts by field name, which loses the interleaving of
    different fields; seed 001 numbers ``@IMG_n`` / ``@VID_n`` "by upload order", so the order is kept here.
    """
    boundary = request.mimetype_params.get("boundary")
    if not boundary:
        raise BadRequest("multipart/form-data body without a boundary")
    decoder = MultipartDecoder(boundary.encode("latin-1"))
    decoder.receive_data(request.get_data(cache=True))
    decoder.receive_data(None)
    parts: list[Part] = []
    current: Field | File | None = None
    buffer = bytearray()
    while True:
        try:
            event = decoder.next_event()
        except ValueError as exc:
            raise BadRequest(f"malformed multipart body: {exc}") from exc
        if isinstance(event, Field | File):
            current, buffer = event, bytearray()
        elif isinstance(event, Data) and current is not None:
            buffer.extend(event.data)
            if not event.more_data:
                filename = current.filename if isinstance(current, File) else None
                parts.append(Part(current.name, filename, current.headers.get("Content-Type"), bytes(buffer)))
                current = None
        elif isinstance(event, Epilogue):
            return parts
        elif isinstance(event, NeedData):  # the whole body was given, so more wanted means it was cut short
            raise BadRequest("incomplete multipart/form-data body: the closing boundary is missing")


class QuietHandler(WSGIRequestHandler):
    """Request handler that keeps test output clean (the request log lives at ``/_sim/requests``)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return  # deliberately silent: every request is recorded under /_sim/requests instead

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            super().log(type, message, *args)

    def connection_dropped(self, error: BaseException, environ: dict[str, Any] | None = None) -> None:
        # A connection dropped before any header went out would otherwise stay open, waiting for the next
        # request of an HTTP/1.1 client that is itself waiting for an answer: close it now, so the client sees
        # the drop at once (with abort_connection's SO_LINGER 0, as a reset).
        self.close_connection = True
