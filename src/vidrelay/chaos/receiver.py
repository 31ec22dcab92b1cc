"""The chaos run's webhook receiver: verifies every signature, and refuses (a 5xx or a 429) or drops (closes the
connection without an answer) about half of the requests. Every request and what it was answered is kept, per
`webhook-id`, for the comparison with the delivery ledger.

A delivery fails at most `max_failures_in_a_row` times in a row and is then accepted: the schedule has ten
attempts, so every event can arrive, and an event that does not is vidrelay's fault, not bad luck.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from vidrelay_core.webhooks import verify

REFUSALS = (500, 502, 503, 429)


@dataclass(frozen=True)
class Request:
    webhook_id: str
    event_id: str
    event_type: str
    video_id: str
    verified: bool
    answer: int | None  # the status answered, None when the connection was dropped
    at: float


class FlakyReceiver:
    def __init__(
        self, secret: str, *, failure_rate: float = 0.5, max_failures_in_a_row: int = 4, seed: int = 0
    ) -> None:
        self.secret = secret
        self.failure_rate = failure_rate
        self.max_failures_in_a_row = max_failures_in_a_row
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.requests: dict[str, list[Request]] = defaultdict(list)
        self.bad_signatures = 0
        self.unreadable = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = receiver.handle(body, headers)
                if answer is None:
                    # Dropped: the request was read whole, the sender never hears back.
                    self.close_connection = True
                    return
                self.send_response(answer)
                if answer == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def handle(self, body: bytes, headers: dict[str, str]) -> int | None:
        verified = verify(self.secret, body, headers)
        try:
            event = json.loads(body)
            data = event.get("data") or {}
            event_id, event_type, video_id = str(event["id"]), str(event["type"]), str(data.get("id", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            with self._lock:
                self.unreadable += 1
            return 400
        webhook_id = headers.get("webhook-id", "")
        with self._lock:
            earlier = self.requests[webhook_id]
            failures_in_a_row = 0
            for seen in reversed(earlier):
                if seen.answer is not None and 200 <= seen.answer < 300:
                    break
                failures_in_a_row += 1
            if not verified:
                self.bad_signatures += 1
                answer: int | None = 401
            elif failures_in_a_row < self.max_failures_in_a_row and self._rng.random() < self.failure_rate:
                answer = None if self._rng.random() < 0.5 else self._rng.choice(REFUSALS)
            else:
                answer = 200
            earlier.append(Request(webhook_id, event_id, event_type, video_id, verified, answer, time.time()))
        return answer

    def snapshot(self) -> dict[str, list[Request]]:
        with self._lock:
            return {key: list(value) for key, value in self.requests.items()}

    def start(self) -> FlakyReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True, name="chaos-receiver").start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
