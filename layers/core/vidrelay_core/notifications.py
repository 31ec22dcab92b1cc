"""Webhook delivery: fan-out of each video event to its targets, the retry schedule, dead letters, redelivery.

Each event from the SNS topic is fanned out into one delivery per target (the job's `webhook_url` and each of
the tenant's endpoints that wants the event type), recorded in the ledger and driven by its own SQS message.
A delivery message that is not due yet goes back to the queue with a visibility timeout that ends when it is
due — SQS allows at most 12 hours of visibility, so a longer wait is simply several receives — and the ledger,
not the message, decides what happens: a duplicated or stale message can never cause a second attempt.

Schedule (delays after each failed attempt): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h, each with
±10 % jitter and never shorter than the receiver's Retry-After: ten attempts over about three days, then the
delivery is failed and put in the dead-letter queue, where the WebhookDeadLetterAlarm sees it.
"""

from __future__ import annotations

import json
import random
import secrets as tokens
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from . import webhooks
from .config import Settings
from .errors import Conflict, InvalidRequest, NotFound
from .ids import new_endpoint_id
from .jobs import EVENT_TYPES
from .obs import logger, record_attempt
from .ssrf import WEBHOOK_PORTS, UrlRejected, check_url
from .store import JobStore
from .webhook_store import JOB_TARGET, Claim, Delivery, Endpoint, WebhookStore

RETRY_DELAYS_S = (5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400)
MAX_ATTEMPTS = len(RETRY_DELAYS_S) + 1
JITTER = 0.10
MAX_RETRY_AFTER_S = 86_400
# SQS refuses a visibility timeout over 12 h; a minute less leaves room for clock skew.
MAX_VISIBILITY_S = 43_200 - 60
# Longer than the notifier's whole invocation (90 s): a live worker never loses its lease to a duplicate message,
# so only a dead worker's attempt is ever taken over.
LEASE_S = 120.0
# Attempts recorded per delivery, redeliveries included: keeps the item far below DynamoDB's 400 KB.
MAX_RECORDED_ATTEMPTS = 50
MAX_ENDPOINTS_PER_TENANT = 16
DEFAULT_ROTATION_GRACE_S = 86_400
MAX_ROTATION_GRACE_S = 7 * 86_400


@dataclass(frozen=True)
class DeliveryRef:
    video_id: str
    event_id: str
    target_id: str

    def message(self) -> str:
        return json.dumps(
            {"delivery": {"video_id": self.video_id, "event_id": self.event_id, "target": self.target_id}}
        )

    @classmethod
    def parse(cls, body: dict[str, Any]) -> DeliveryRef:
        ref = body["delivery"]
        return cls(str(ref["video_id"]), str(ref["event_id"]), str(ref["target"]))


@dataclass(frozen=True)
class Outcome:
    """`wait_s` None: the message is done (delete it). Otherwise: bring it back after that many seconds."""

    wait_s: float | None = None

    @property
    def done(self) -> bool:
        return self.wait_s is None


DONE = Outcome()


class Notifier:
    def __init__(
        self,
        settings: Settings,
        *,
        jobs: JobStore,
        hooks: WebhookStore,
        sqs: Any,
        http: Callable[[], httpx.Client],
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.hooks = hooks
        self.sqs = sqs
        self.http = http
        self.clock = clock
        self.rng = rng or random.Random()

    # -- fan-out ------------------------------------------------------------------------------------------

    def fan_out(self, event: dict[str, Any]) -> list[str]:
        """One delivery per interested target. Safe to run twice: an existing delivery is not recreated, but
        still gets a message while unfinished (the first run may have died before sending it)."""
        video_id, event_type = str(event["data"]["id"]), str(event["type"])
        job = self.jobs.get_job(video_id)
        if job is None:
            return []
        targets: list[tuple[str, str]] = []
        if job.webhook_url and (not job.webhook_events or event_type in job.webhook_events):
            targets.append((JOB_TARGET, job.webhook_url))
        targets += [(ep.id, "") for ep in self.hooks.list_endpoints(job.tenant) if ep.wants(event_type)]
        body = json.dumps(event, separators=(",", ":"))
        now = self.clock()
        for target_id, url in targets:
            delivery = Delivery(
                tenant=job.tenant,
                video_id=video_id,
                event_id=str(event["id"]),
                target_id=target_id,
                event_type=event_type,
                event_body=body,
                url=url,
                state="pending",
                attempt_count=0,
                next_attempt_at=now,
                created_at=now,
            )
            if not self.hooks.create_delivery(delivery):
                existing = self.hooks.get_delivery(video_id, delivery.event_id, target_id)
                if existing is None or existing.state in ("succeeded", "failed"):
                    continue
            self.enqueue(DeliveryRef(video_id, delivery.event_id, target_id))
        return [target for target, _ in targets]

    def enqueue(self, ref: DeliveryRef, delay_s: float = 0) -> None:
        self.sqs.send_message(
            QueueUrl=self.settings.webhook_queue_url,
            MessageBody=ref.message(),
            DelaySeconds=min(900, max(0, int(delay_s))),
        )

    # -- one delivery -------------------------------------------------------------------------------------

    def process(self, ref: DeliveryRef) -> Outcome:
        for _ in range(3):
            delivery = self.hooks.get_delivery(ref.video_id, ref.event_id, ref.target_id)
            if delivery is None:
                return DONE  # expired with its job
            if delivery.state in ("succeeded", "failed"):
                if delivery.dead_lettered and not delivery.dead_letter_sent:
                    self._dead_letter(delivery)  # the worker that failed it died before sending it there
                return DONE
            now = self.clock()
            if delivery.state == "delivering" and (delivery.lease_until or 0) > now:
                return Outcome(max(1.0, (delivery.lease_until or now) - now + 1))
            if delivery.state == "delivering":
                # Its worker died mid-attempt (the lease ran out): that attempt counts, so a receiver that
                # kills every worker (say, by trickling its answer past the timeout) still ends the schedule.
                self._abandon(delivery, now)
                continue
            if delivery.state == "pending" and delivery.next_attempt_at > now:
                return Outcome(delivery.next_attempt_at - now)
            claim = self.hooks.claim(delivery, now=now, lease_s=LEASE_S)
            if claim is not None:
                return self._attempt(claim, now)
        return Outcome(1.0)  # lost three races in a row: look again shortly

    def _attempt(self, claim: Claim, now: float) -> Outcome:
        delivery = claim.delivery
        manual = delivery.manual_attempts > 0
        number = delivery.attempt_count + 1
        target = self._target(delivery, now)
        if isinstance(target, str):
            refused = {"attempt": number, "at": int(now), "status": None, "latency_ms": 0, "error": target}
            self.hooks.finish(claim, state="failed", attempt=refused, manual=manual)
            return DONE
        url, signing_secrets, endpoint = target
        result = webhooks.deliver(
            self.http(),
            url,
            secrets_=signing_secrets,
            msg_id=delivery.event_id,
            body=delivery.event_body,
            allow_loopback=self.settings.allow_loopback_urls,
        )
        attempt: dict[str, Any] = {
            "attempt": number,
            "at": int(now),
            "status": result.status,
            "latency_ms": result.latency_ms,
            "error": result.error,
            "manual": manual,
        }
        record_attempt(delivery.target_id, succeeded=result.succeeded, latency_ms=result.latency_ms)
        logger.info(
            "webhook attempt",
            extra={
                "video_id": delivery.video_id,
                "event_id": delivery.event_id,
                "target": delivery.target_id,
                **attempt,
            },
        )
        if result.succeeded:
            if not self.hooks.finish(claim, state="succeeded", attempt=attempt, manual=manual):
                logger.warning(
                    "delivered, but the lease was lost before recording it", extra={"event_id": delivery.event_id}
                )
            return DONE
        if result.status == 410:
            # The receiver says it is gone for good: stop sending to it (Svix and Stripe do the same).
            if endpoint is not None:
                reason = "the endpoint answered 410 Gone"
                self.hooks.disable_endpoint(endpoint.tenant, endpoint.id, reason=reason, now=now)
            self.hooks.finish(claim, state="failed", attempt=attempt, manual=manual)
            return DONE
        if manual:
            self.hooks.finish(claim, state="failed", attempt=attempt, manual=True)
            return DONE
        if number >= MAX_ATTEMPTS:
            # Recorded first, sent second: a crash in between is repaired by the next receive (see process).
            if self.hooks.finish(claim, state="failed", attempt=attempt, dead_lettered=True):
                self._dead_letter(delivery)
            return DONE
        delay = self.retry_delay(number, result.retry_after_s)
        if not self.hooks.finish(claim, state="pending", attempt=attempt, next_attempt_at=now + delay):
            return Outcome(1.0)
        return Outcome(delay)

    def _abandon(self, delivery: Delivery, now: float) -> None:
        number = delivery.attempt_count + 1
        attempt = {
            "attempt": number,
            "at": int(now),
            "latency_ms": 0,
            "error": "the attempt was interrupted (its worker stopped before recording an answer)",
        }
        if number >= MAX_ATTEMPTS or delivery.manual_attempts > 0:
            last = delivery.manual_attempts == 0
            recorded = self.hooks.abandon(
                delivery, attempt=attempt, state="failed", next_attempt_at=now, dead_lettered=last
            )
            if recorded and last:
                self._dead_letter(delivery)
            return
        delay = self.retry_delay(number, None)
        self.hooks.abandon(delivery, attempt=attempt, state="pending", next_attempt_at=now + delay)

    def retry_delay(self, failed_attempts: int, retry_after_s: float | None) -> float:
        base = RETRY_DELAYS_S[failed_attempts - 1] * self.settings.webhook_retry_scale
        delay = base * self.rng.uniform(1 - JITTER, 1 + JITTER)
        if retry_after_s:
            delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
        return delay

    def _target(self, delivery: Delivery, now: float) -> tuple[str, list[str], Endpoint | None] | str:
        """Where and with which secrets to send, or why it cannot be sent any more."""
        if delivery.target_id == JOB_TARGET:
            secret = self.jobs.tenant_webhook_secret(delivery.tenant)
            if secret is None:
                return "the tenant has no webhook signing secret"
            return delivery.url, [secret], None
        endpoint = self.hooks.get_endpoint(delivery.tenant, delivery.target_id)
        if endpoint is None:
            return "the endpoint was deleted"
        if endpoint.disabled_at is not None:
            return f"the endpoint is disabled ({endpoint.disabled_reason})"
        return endpoint.url, endpoint.signing_secrets(now), endpoint

    def _dead_letter(self, delivery: Delivery) -> None:
        self.sqs.send_message(
            QueueUrl=self.settings.webhook_dlq_url,
            MessageBody=json.dumps(
                {
                    "delivery": {
                        "video_id": delivery.video_id,
                        "event_id": delivery.event_id,
                        "target": delivery.target_id,
                        "id": delivery.id,
                    },
                    "reason": f"{MAX_ATTEMPTS} attempts failed",
                }
            ),
        )
        self.hooks.mark_dead_letter_sent(delivery)

    # -- API operations -----------------------------------------------------------------------------------

    def deliveries(self, video_id: str) -> list[Delivery]:
        return self.hooks.list_deliveries(video_id)

    def redeliver(self, video_id: str, delivery_id: str) -> Delivery:
        found = next((d for d in self.hooks.list_deliveries(video_id) if d.id == delivery_id), None)
        if found is None:
            raise NotFound(f"No delivery '{delivery_id}' for video '{video_id}'.", param="delivery_id")
        ref = DeliveryRef(found.video_id, found.event_id, found.target_id)
        if found.state in ("pending", "delivering"):
            # Still on its schedule. Its message is sent again anyway: if the one that drives it was lost (the
            # api died after a redelivery request, say), this one takes over; a duplicate is harmless.
            self.enqueue(ref)
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
        self.enqueue(ref)
        return again or found

    def create_endpoint(self, tenant: str, fields: dict[str, Any]) -> Endpoint:
        unknown = sorted(set(fields) - {"url", "event_types", "description"})
        if unknown:
            raise InvalidRequest(unknown[0], fields[unknown[0]], "one of the fields url, event_types, description")
        url = endpoint_url(fields.get("url"), allow_loopback=self.settings.allow_loopback_urls)
        event_types = endpoint_event_types(fields.get("event_types"))
        description = fields.get("description") or ""
        if not isinstance(description, str) or len(description) > 512:
            raise InvalidRequest("description", description, "a string of at most 512 characters")
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

    def endpoint(self, tenant: str, endpoint_id: str) -> Endpoint:
        endpoint = self.hooks.get_endpoint(tenant, endpoint_id) if endpoint_id.startswith("we_") else None
        if endpoint is None:
            raise NotFound(f"No webhook endpoint '{endpoint_id}'.", param="endpoint_id")
        return endpoint

    def delete_endpoint(self, tenant: str, endpoint_id: str) -> None:
        self.endpoint(tenant, endpoint_id)
        self.hooks.delete_endpoint(tenant, endpoint_id)

    def rotate_secret(self, tenant: str, endpoint_id: str, fields: dict[str, Any]) -> Endpoint:
        grace = fields.get("grace_period_seconds", DEFAULT_ROTATION_GRACE_S)
        if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= MAX_ROTATION_GRACE_S:
            raise InvalidRequest("grace_period_seconds", grace, f"an integer from 0 to {MAX_ROTATION_GRACE_S}")
        endpoint = self.endpoint(tenant, endpoint_id)
        new = webhooks.new_secret()
        if not self.hooks.rotate_secret(
            tenant, endpoint_id, old=endpoint.secret, new=new, grace_until=self.clock() + grace
        ):
            raise Conflict("The secret was rotated by another request at the same time; try again.", param=None)
        return self.endpoint(tenant, endpoint_id)

    def test_endpoint(self, tenant: str, endpoint_id: str) -> dict[str, Any]:
        """Sends a signed `webhook_endpoint.test` event now and reports what the endpoint answered."""
        endpoint = self.endpoint(tenant, endpoint_id)
        now = self.clock()
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
            allow_loopback=self.settings.allow_loopback_urls,
        )
        return {
            "object": "webhook_endpoint.test",
            "endpoint_id": endpoint.id,
            "event": event,
            "succeeded": result.succeeded,
            "status": result.status,
            "latency_ms": result.latency_ms,
            "error": result.error,
        }


def endpoint_url(value: Any, *, allow_loopback: bool) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("url", value, "an https URL")
    try:
        check_url(value, ports=WEBHOOK_PORTS, allow_loopback=allow_loopback)
    except UrlRejected as exc:
        raise InvalidRequest(
            "url", value, message=f"Invalid value for 'url': {value[:200]!r} was given, but the URL {exc}."
        ) from None
    return value.strip()


def endpoint_event_types(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    allowed = ", ".join(EVENT_TYPES)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest("event_types", value, f"a list of event types: {allowed}")
    for item in value:
        if item not in EVENT_TYPES:
            raise InvalidRequest("event_types", item, allowed)
    return tuple(dict.fromkeys(value))
