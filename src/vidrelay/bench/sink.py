"""A discard S3 sink: just enough of S3's REST API (path-style PutObject, multipart upload, HEAD, DELETE) to take
an upload at the speed of the socket and throw the bytes away. The downloader's ceiling, with no storage engine
in the way; it remembers each object's size so a transfer can still be checked."""

from __future__ import annotations

import itertools
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

READ_BLOCK = 1024 * 1024
XML = '<?xml version="1.0" encoding="UTF-8"?>'


class SinkState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sizes: dict[str, int] = {}  # "bucket/key" → bytes
        self.uploads: dict[str, dict[int, int]] = {}  # upload id → part number → bytes
        self.etags = itertools.count(1)


def discard_body(handler: BaseHTTPRequestHandler) -> int:
    """Reads and drops the request body (Content-Length or chunked); answers the payload's size (an aws-chunked
    body declares its decoded length)."""
    read = 0
    block = memoryview(bytearray(READ_BLOCK))
    if handler.headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            _drop(handler, size, block)
            handler.rfile.readline()
            read += size
    else:
        read = int(handler.headers.get("content-length") or 0)
        _drop(handler, read, block)
    decoded = handler.headers.get("x-amz-decoded-content-length")
    return int(decoded) if decoded else read


def _drop(handler: BaseHTTPRequestHandler, size: int, block: memoryview) -> None:
    """Reads `size` bytes into one reused block: no allocation per read, so the sink costs only the socket."""
    remaining = size
    while remaining > 0:
        got = handler.rfile.readinto(block[: min(remaining, len(block))])
        if not got:
            break
        remaining -= got


def make_handler(state: SinkState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            return

        def _answer(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            if data:
                self.send_header("content-type", "application/xml")
            self.end_headers()
            self.wfile.write(data)

        def _target(self) -> tuple[str, str, dict[str, list[str]]]:
            parts = urlsplit(self.path)
            bucket, _, key = parts.path.lstrip("/").partition("/")
            return bucket, key, parse_qs(parts.query, keep_blank_values=True)

        def _etag(self) -> str:
            return f'"{next(state.etags):032x}"'

        def do_PUT(self) -> None:
            bucket, key, query = self._target()
            size = discard_body(self)
            if "uploadId" in query:
                with state.lock:
                    state.uploads.setdefault(query["uploadId"][0], {})[int(query["partNumber"][0])] = size
            elif key:
                with state.lock:
                    state.sizes[f"{bucket}/{key}"] = size
            self._answer(200, headers={"ETag": self._etag()})

        def do_POST(self) -> None:
            bucket, key, query = self._target()
            discard_body(self)
            if "uploads" in query:
                upload_id = uuid.uuid4().hex
                with state.lock:
                    state.uploads[upload_id] = {}
                body = (
                    f"{XML}<InitiateMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key>"
                    f"<UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>"
                )
                return self._answer(200, body)
            if "uploadId" in query:
                with state.lock:
                    parts = state.uploads.pop(query["uploadId"][0], {})
                    state.sizes[f"{bucket}/{key}"] = sum(parts.values())
                body = (
                    f"{XML}<CompleteMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key>"
                    f"<ETag>{self._etag()}</ETag></CompleteMultipartUploadResult>"
                )
                return self._answer(200, body)
            self._answer(400, f"{XML}<Error><Code>InvalidRequest</Code></Error>")

        def do_HEAD(self) -> None:
            bucket, key, _ = self._target()
            if not key:
                return self._answer(200)
            with state.lock:
                size = state.sizes.get(f"{bucket}/{key}")
            if size is None:
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()
                return None
            self.send_response(200)
            self.send_header("content-length", str(size))
            self.send_header("ETag", self._etag())
            self.end_headers()
            return None

        def do_DELETE(self) -> None:
            bucket, key, query = self._target()
            with state.lock:
                if "uploadId" in query:
                    state.uploads.pop(query["uploadId"][0], None)
                else:
                    state.sizes.pop(f"{bucket}/{key}", None)
            self._answer(204)

    return Handler


class DiscardSink:
    def __init__(self, port: int = 0) -> None:
        self.state = SinkState()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(self.state))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> DiscardSink:
        threading.Thread(target=self._server.serve_forever, name="discard-sink", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
