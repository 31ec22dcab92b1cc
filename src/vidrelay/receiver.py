"""`vidrelay listen`: a local webhook receiver that verifies Standard Webhooks signatures and prints events."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from vidrelay_core.webhooks import verify

TOLERANCE_S = 300
# The longest a delivery signed by no known key waits for the next allowed re-read of the keys.
MAX_REFRESH_WAIT_S = 1.0


@dataclass(frozen=True)
class SigningKey:
    """A secret a delivery may be signed with, and whose it is ("tenant local", "endpoint we_…")."""

    secret: str
    owner: str


@dataclass
class Received:
    event: dict[str, Any]
    headers: dict[str, str]
    verified: bool
    attempt: int
    body: bytes = b""  # the raw body, exactly as signed
    received_at: float = 0.0  # time.time() when the request arrived
    signed_by: str | None = None  # the owner of the key that verified it


@dataclass(frozen=True)
class Rejected:
    """A refused delivery, with what could be read of it, why it was refused and what it was answered."""

    headers: dict[str, str]
    reason: str
    event_type: str
    video_id: str
    answered: int = 401

    @classmethod
    def of(cls, body: bytes, headers: dict[str, str], reason: str, *, answered: int = 401) -> Rejected:
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        event = event if isinstance(event, dict) else {}
        data = event["data"] if isinstance(event.get("data"), dict) else {}
        return cls(headers, reason, str(event.get("type") or "?"), str(data.get("id") or "?"), answered)


def rejection(keys: Sequence[SigningKey], body: bytes, headers: dict[str, str], now: float) -> str:
    """Why no key verifies this delivery, in the receiver's words."""
    if not headers.get("webhook-id"):
        return "no webhook-id header"
    timestamp = headers.get("webhook-timestamp", "")
    if not timestamp.isdigit():
        return f"webhook-timestamp {timestamp!r} is not a unix time" if timestamp else "no webhook-timestamp header"
    age = now - int(timestamp)
    if age > TOLERANCE_S:
        return f"timestamp {age:.0f} s old (more than {TOLERANCE_S} s: stale or replayed)"
    if -age > TOLERANCE_S:
        return f"timestamp {-age:.0f} s in the future (more than {TOLERANCE_S} s: check the clocks)"
    signatures = [s for s in headers.get("webhook-signature", "").split() if s.startswith("v1,")]
    if not signatures:
        return "no v1 signature in webhook-signature"
    return f"signature matches none of the {len(keys)} known secret{'s' if len(keys) != 1 else ''}"


@dataclass
class Receiver:
    """Answers each POST with `statuses` in turn (then `default_status`), verifying signatures with `secret`,
    `signing_keys` and the keys of `key_source` when any is set. An entry may be `(status, headers)`, e.g.
    `(503, {"Retry-After": "3"})` or a redirect. `key_source` is read at start and again when a delivery matches
    no key (a webhook endpoint created since), at most once per `refresh_interval_s`."""

    port: int = 0
    secret: str | None = None
    statuses: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    default_status: int = 200
    on_event: Callable[[Received], None] | None = None
    on_rejected: Callable[[Rejected], None] | None = None
    signing_keys: list[SigningKey] = field(default_factory=list)
    key_source: Callable[[], list[SigningKey]] | None = None
    refresh_interval_s: float = 1.0

    def __post_init__(self) -> None:
        self.events: queue.Queue[Received] = queue.Queue()
        self.attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._reads = 0  # how many times key_source was read
        self._fixed = [SigningKey(self.secret, "secret")] if self.secret else []
        self._fixed += self.signing_keys
        self._sourced: list[SigningKey] = []
        self._read_at = float("-inf")
        if self.key_source is not None:
            self._refresh()
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

    @property
    def verifying(self) -> bool:
        return bool(self._fixed) or self.key_source is not None

    def keys(self) -> list[SigningKey]:
        with self._lock:
            return [*self._fixed, *self._sourced]

    def _refresh(self, matched_read: int | None = None) -> bool:
        """Re-reads `key_source` unless it was read very recently; False when nothing new can be had. One read at a
        time, and a delivery matched against keys older than the last read (`matched_read`) is matched again
        instead of refused for being recent: deliveries of a new endpoint arrive side by side."""
        assert self.key_source is not None
        with self._refreshing:
            if matched_read is not None and matched_read != self._reads:
                return True
            wait_s = self._read_at + self.refresh_interval_s - time.monotonic()
            if wait_s > MAX_REFRESH_WAIT_S:
                return False
            if wait_s > 0:
                # The next read is allowed soon: a delivery of an endpoint created just after the last read waits
                # for it rather than being refused (and retried minutes later).
                time.sleep(wait_s)
            self._read_at = time.monotonic()
            keys = self.key_source()
            with self._lock:
                self._sourced = keys
                self._reads += 1
        return True

    def _match(self, body: bytes, headers: dict[str, str]) -> SigningKey | None:
        for key in self.keys():
            if verify(key.secret, body, headers, tolerance_s=TOLERANCE_S):
                return key
        return None

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        arrived = time.time()
        signed_by: SigningKey | None = None
        if self.verifying:
            with self._lock:
                matched_read = self._reads
            signed_by = self._match(body, headers)
            if signed_by is None and self.key_source is not None and self._refresh(matched_read):
                signed_by = self._match(body, headers)
            if signed_by is None:
                if self.on_rejected:
                    self.on_rejected(Rejected.of(body, headers, rejection(self.keys(), body, headers, arrived)))
                return 401, {}
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            if self.on_rejected:
                self.on_rejected(Rejected.of(body, headers, "the body is not a JSON event", answered=400))
            return 400, {}
        msg_id = headers.get("webhook-id", "")
        with self._lock:
            self.attempts[msg_id] = self.attempts.get(msg_id, 0) + 1
            attempt = self.attempts[msg_id]
            answer = self.statuses.pop(0) if self.statuses else self.default_status
        status, extra = answer if isinstance(answer, tuple) else (answer, {})
        received = Received(
            event,
            headers,
            signed_by is not None,
            attempt,
            body=body,
            received_at=arrived,
            signed_by=signed_by.owner if signed_by else None,
        )
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
