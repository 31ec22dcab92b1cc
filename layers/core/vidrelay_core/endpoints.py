"""What the API does with webhooks: a tenant's endpoints (create, show, delete, rotate the secret, send a test)
and a video's deliveries (list, redeliver one). The notifier (delivery.py) does the delivering."""

from __future__ import annotations

import json
import secrets as tokens
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from . import webhooks
from .errors import Conflict, InvalidRequest, NotFound, RateLimited
from .ids import new_endpoint_id
from .ledger import Delivery, Endpoint
from .queues import DeliveryRef, Queues
from .store.counters import CounterStore, seconds_to_next_window
from .store.webhooks import WebhookStore

MAX_ENDPOINTS_PER_TENANT = 16
# Attempts recorded per delivery, redeliveries included: keeps the item far below DynamoDB's 400 KB.
MAX_RECORDED_ATTEMPTS = 50


@dataclass(frozen=True)
class TestResult:
    endpoint_id: str
    event: dict[str, Any]
    succeeded: bool
    status: int | None
    latency_ms: int
    # Only a coarse class of what went wrong ("timeout", "connection_failed", "url_refused", "request_failed"):
    # the test is sent on demand, so a detailed answer would make it a probe of other people's hosts.
    error: str | None


def coarse_error(attempt: webhooks.Attempt) -> str | None:
    if attempt.status is not None:
        return None if attempt.succeeded else f"http_{attempt.status}"
    text = attempt.error or ""
    if text.startswith("timeout"):
        return "timeout"
    if text.startswith("connection error"):
        return "connection_failed"
    if text.startswith("url refused"):
        return "url_refused"
    return "request_failed"


class WebhookEndpoints:
    def __init__(
        self,
        hooks: WebhookStore,
        counters: CounterStore,
        *,
        http: Callable[[], httpx.Client],
        allow_loopback_urls: bool,
        tests_per_minute: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hooks = hooks
        self.counters = counters
        self.http = http
        self.allow_loopback_urls = allow_loopback_urls
        self.tests_per_minute = tests_per_minute
        self.clock = clock

    def create(self, tenant: str, *, url: str, event_types: tuple[str, ...], description: str) -> Endpoint:
        """A new endpoint (url, filter and description validated by the contract) with its own secret."""
        if len(self.hooks.list_endpoints(tenant)) >= MAX_ENDPOINTS_PER_TENANT:
            raise InvalidRequest(
                "url", url, message=f"A tenant may have at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints."
            )
        endpoint = Endpoint(
            id=new_endpoint_id(),
            tenant=tenant,
            url=url,
            event_types=event_types,
            description=description,
            secret=webhooks.new_secret(),
            created_at=self.clock(),
        )
        self.hooks.put_endpoint(endpoint)
        return endpoint

    def list(self, tenant: str) -> list[Endpoint]:
        return self.hooks.list_endpoints(tenant)

    def get(self, tenant: str, endpoint_id: str) -> Endpoint:
        endpoint = self.hooks.get_endpoint(tenant, endpoint_id) if endpoint_id.startswith("we_") else None
        if endpoint is None:
            raise NotFound(f"No webhook endpoint '{endpoint_id}'.", param="endpoint_id")
        return endpoint

    def delete(self, tenant: str, endpoint_id: str) -> None:
        self.get(tenant, endpoint_id)
        self.hooks.delete_endpoint(tenant, endpoint_id)

    def rotate_secret(self, tenant: str, endpoint_id: str, *, grace_s: int) -> Endpoint:
        """A new secret; the previous one keeps signing too until `grace_s` from now."""
        endpoint = self.get(tenant, endpoint_id)
        new = webhooks.new_secret()
        if not self.hooks.rotate_secret(
            tenant, endpoint_id, old=endpoint.secret, new=new, grace_until=self.clock() + grace_s
        ):
            raise Conflict("The secret was rotated by another request at the same time; try again.", param=None)
        return self.get(tenant, endpoint_id)

    def test(self, tenant: str, endpoint_id: str) -> TestResult:
        """Sends a signed `webhook_endpoint.test` event now (at most `tests_per_minute` per tenant)."""
        endpoint = self.get(tenant, endpoint_id)
        now = self.clock()
        if not self.counters.take_test_send(tenant, self.tests_per_minute, now):
            retry_after = seconds_to_next_window(now)
            raise RateLimited(
                f"At most {self.tests_per_minute} test events per minute may be sent; try again in {retry_after} s.",
                retry_after_s=retry_after,
            )
        event = {
            "id": "evt_test_" + tokens.token_hex(12),
            "object": "event",
            "created_at": int(now),
            "type": "webhook_endpoint.test",
            "data": {"id": endpoint.id, "object": "webhook_endpoint", "url": endpoint.url},
        }
        result = webhooks.deliver(
            self.http(),
            endpoint.url,
            secrets_=endpoint.signing_secrets(now),
            msg_id=str(event["id"]),
            body=json.dumps(event, separators=(",", ":")),
            allow_loopback=self.allow_loopback_urls,
        )
        return TestResult(
            endpoint_id=endpoint.id,
            event=event,
            succeeded=result.succeeded,
            status=result.status,
            latency_ms=result.latency_ms,
            error=coarse_error(result),
        )


class Deliveries:
    """A video's deliveries as the API shows them, and one more attempt of a finished one."""

    def __init__(self, hooks: WebhookStore, queues: Queues, *, clock: Callable[[], float] = time.time) -> None:
        self.hooks = hooks
        self.queues = queues
        self.clock = clock

    def list(self, video_id: str) -> list[Delivery]:
        return self.hooks.list_deliveries(video_id)

    def redeliver(self, video_id: str, delivery_id: str) -> Delivery:
        found = next((d for d in self.hooks.list_deliveries(video_id) if d.id == delivery_id), None)
        if found is None:
            raise NotFound(f"No delivery '{delivery_id}' for video '{video_id}'.", param="delivery_id")
        ref = DeliveryRef(found.video_id, found.event_id, found.target_id)
        if found.state in ("pending", "delivering"):
            # Still on its schedule. Its message is sent again anyway: if the one that drives it was lost (the
            # api died after a redelivery request, say), this one takes over; a duplicate is harmless.
            self.queues.send_delivery(ref)
            return found
        if found.attempt_count >= MAX_RECORDED_ATTEMPTS:
            raise Conflict(
                f"Delivery '{delivery_id}' has been attempted {found.attempt_count} times, the most kept for one "
                "delivery.",
                param="delivery_id",
            )
        if not self.hooks.request_redelivery(found, now=self.clock()):
            raise Conflict(f"Delivery '{delivery_id}' changed while asking for redelivery; try again.", param=None)
        # Read before the message goes out: afterwards a fast notifier may already be delivering it, and the
        # answer should say what this request did (made it due again), not how far the next attempt got.
        again = self.hooks.get_delivery(ref.video_id, ref.event_id, ref.target_id)
        self.queues.send_delivery(ref)
        return again or found
