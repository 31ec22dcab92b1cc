"""The webhook ledger's records: a tenant's endpoints and one delivery per (event, target).

A delivery moves pending → delivering (a lease, taken by one worker) → pending | succeeded | failed, each step a
conditional write in store/webhooks.py: a duplicated message can never make two successful deliveries, and a
worker that died mid-attempt only delays the next one until its lease runs out.
"""

from __future__ import annotations

import hashlib
import secrets as random
import time
from dataclasses import dataclass, field
from typing import Any, Literal

DeliveryState = Literal["pending", "delivering", "succeeded", "failed"]
# The job's own webhook_url (signed with the tenant's secret); endpoints are targets by their id.
JOB_TARGET = "job"


@dataclass(frozen=True)
class Endpoint:
    id: str
    tenant: str
    url: str
    event_types: tuple[str, ...]
    description: str
    secret: str
    created_at: float
    previous_secret: str | None = None
    previous_secret_until: float | None = None
    disabled_at: float | None = None
    disabled_reason: str | None = None

    def signing_secrets(self, now: float) -> list[str]:
        """The current secret, and during a rotation's grace period the previous one too."""
        keep_previous = self.previous_secret and self.previous_secret_until and now < self.previous_secret_until
        return [self.secret, self.previous_secret] if keep_previous and self.previous_secret else [self.secret]

    def wants(self, event_type: str) -> bool:
        return self.disabled_at is None and (not self.event_types or event_type in self.event_types)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "webhook_endpoint",
            "url": self.url,
            "event_types": list(self.event_types),
            "description": self.description,
            "status": "disabled" if self.disabled_at else "enabled",
            "disabled_reason": self.disabled_reason,
            "created_at": int(self.created_at),
            "secret_rotating_until": int(self.previous_secret_until)
            if self.previous_secret_until and self.previous_secret_until > time.time()
            else None,
        }


@dataclass(frozen=True)
class Delivery:
    tenant: str
    video_id: str
    event_id: str
    target_id: str
    event_type: str
    event_body: str
    url: str  # for the job target; endpoints are looked up at each attempt (they may change or go)
    state: DeliveryState
    attempt_count: int
    next_attempt_at: float
    created_at: float
    attempts: tuple[dict[str, Any], ...] = ()
    lease_until: float | None = None
    lease_token: str | None = None
    manual_attempts: int = 0  # redeliveries asked for through the API, each a single attempt
    dead_lettered: bool = False
    dead_letter_sent: bool = False

    @property
    def id(self) -> str:
        return delivery_id(self.event_id, self.target_id)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "webhook_delivery",
            "video_id": self.video_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "target": self.target_id,
            "url": self.url or None,
            "status": self.state,
            "attempt_count": self.attempt_count,
            "next_attempt_at": int(self.next_attempt_at) if self.state == "pending" else None,
            "attempts": [_public_attempt(a) for a in self.attempts],
            "created_at": int(self.created_at),
        }


def _public_attempt(attempt: dict[str, Any]) -> dict[str, Any]:
    # Stored without its None values; shown with every field.
    return {
        "attempt": int(attempt["attempt"]),
        "at": int(attempt["at"]),
        "status": attempt.get("status"),
        "latency_ms": int(attempt.get("latency_ms") or 0),
        "error": attempt.get("error"),
        "manual": bool(attempt.get("manual")),
    }


@dataclass
class Claim:
    delivery: Delivery
    token: str = field(default_factory=lambda: random.token_hex(8))


def delivery_id(event_id: str, target_id: str) -> str:
    return "dlv_" + hashlib.sha256(f"{event_id}|{target_id}".encode()).hexdigest()[:24]
