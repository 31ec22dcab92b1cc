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
    """Answers each POST with `statuses` in turn (then 200), verifying signatures with `secret` when set."""

    port: int = 0
    secret: str | None = None
    statuses: list[int] = field(default_factory=list)
    on_event: Callable[[Received], None] | None = None

    def __post_init__(self) -> None:
        self.events: queue.Queue[Received] = queue.Queue()
        self.attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver.handle(body, headers)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks"

    def handle(self, body: bytes, headers: dict[str, str]) -> int:
        arrived = time.time()
        verified = True
        if self.secret:
            verified = verify(self.secret, body, headers)
            if not verified:
                return 401
        msg_id = headers.get("webhook-id", "")
        with self._lock:
            self.attempts[msg_id] = self.attempts.get(msg_id, 0) + 1
            attempt = self.attempts[msg_id]
            status = self.statuses.pop(0) if self.statuses else 200
        received = Received(json.loads(body), headers, verified, attempt, body=body, received_at=arrived)
        if self.on_event:
            self.on_event(received)
        self.events.put(received)
        return status

    def start(self) -> Receiver:
        threading.Thread(target=self._server.serve_forever, daemon=True, name="receiver").start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
