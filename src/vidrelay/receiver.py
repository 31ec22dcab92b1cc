"""`vidrelay listen`: a local webhook receiver that verifies Standard Webhooks signatures and prints events."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from vidrelay_core.webhooks import verify


@dataclass
class Received:
    event: dict[str, Any]
    headers: dict[str, str]
    verified: bool
    attempt: int
    body: bytes = b""  # the raw body, exactly as signed
    received_at: float = 0.0  # time.time() when the request arrived


@dataclass
class Receiver:
    """Answers each POST with `statuses` in turn (then `default_status`), verifying signatures with `secret`
    when set. An entry may be `(status, headers)`, e.g. `(503, {"Retry-After": "3"})` or a redirect."""

    port: int = 0
    secret: str | None = None
    statuses: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    default_status: int = 200
    on_event: Callable[[Received], None] | None = None
    on_rejected: Callable[[dict[str, str]], None] | None = None

    def __post_init__(self) -> None:
        self.events: queue.Queue[Received] = queue.Queue()
        self.attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra = receiver.handle(body, headers)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks"

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        arrived = time.time()
        verified = True
        if self.secret:
            verified = verify(self.secret, body, headers)
            if not verified:
                if self.on_rejected:
                    self.on_rejected(headers)
                return 401, {}
        msg_id = headers.get("webhook-id", "")
        with self._lock:
            self.attempts[msg_id] = self.attempts.get(msg_id, 0) + 1
            attempt = self.attempts[msg_id]
            answer = self.statuses.pop(0) if self.statuses else self.default_status
        status, extra = answer if isinstance(answer, tuple) else (answer, {})
        received = Received(json.loads(body), headers, verified, attempt, body=body, received_at=arrived)
        if self.on_event:
            self.on_event(received)
        self.events.put(received)
        return status, extra

    def start(self) -> Receiver:
        threading.Thread(target=self._server.serve_forever, daemon=True, name="receiver").start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
