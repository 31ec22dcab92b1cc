"""Webhook delivery (the notifier): fan-out of each video event to its targets, the retry schedule, dead letters.

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
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from . import webhooks
from .config import Settings
from .ledger import JOB_TARGET, Claim, Delivery, Endpoint
from .obs import in_context, logger, record_attempt
from .queues import DeliveryRef, EventMessage, Queues
from .store.jobs import JobStore
from .store.tenants import TenantStore
from .store.webhooks import WebhookStore
from .subscriptions import job_target_wants, job_webhook

RETRY_DELAYS_S = (5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400)
MAX_ATTEMPTS = len(RETRY_DELAYS_S) + 1
JITTER = 0.10
MAX_RETRY_AFTER_S = 86_400
# Longer than the notifier's whole invocation (90 s): a live worker never loses its lease to a duplicate message,
# so only a dead worker's attempt is ever taken over.
LEASE_S = 120.0
# How long a tenant's signing secret is reused before it is read again.
SECRET_TTL_S = 300.0


@dataclass(frozen=True)
class Outcome:
    """`wait_s` None: the message is done (delete it). Otherwise: bring it back after that many seconds."""

    wait_s: float | None = None

    @property
    def done(self) -> bool:
        return self.wait_s is None


DONE = Outcome()


class DeliveryWorker:
    def __init__(
        self,
        settings: Settings,
        *,
        jobs: JobStore,
        tenants: TenantStore,
        hooks: WebhookStore,
        queues: Queues,
        http: Callable[[], httpx.Client],
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.tenants = tenants
        self.hooks = hooks
        self.queues = queues
        self.http = http
        self.clock = clock
        self.rng = rng or random.Random()
        self._secrets: dict[str, tuple[str, float]] = {}

    # -- fan-out ------------------------------------------------------------------------------------------

    def fan_out(self, event: EventMessage) -> list[str]:
        """One delivery per interested target, each attempted at once, side by side: a delivery needs no queue
        message of its own unless its first attempt fails (then one carries its retry schedule). Safe to run
        twice: an existing delivery is not recreated, but still gets a message while unfinished (the first run may
        have died before its attempt was recorded)."""
        webhook, tenant = event.data.get("webhook"), event.tenant
        if tenant is None or not isinstance(webhook, dict | None):
            # An event without its tenant attribute (published by an older version): the job says.
            job = self.jobs.get_job(event.video_id)
            if job is None:
                return []
            tenant = job.tenant
            webhook = job_webhook(job)
        targets: list[tuple[str, str]] = []
        if webhook and job_target_wants(webhook.get("url"), webhook.get("events") or (), event.type):
            targets.append((JOB_TARGET, str(webhook["url"])))
        targets += [(ep.id, "") for ep in self.hooks.list_endpoints(tenant) if ep.wants(event.type)]
        if not targets:
            return []
        body = json.dumps(event.body(), separators=(",", ":"))
        now = self.clock()

        def first_attempt(target: tuple[str, str]) -> None:
            target_id, url = target
            delivery = Delivery(
                tenant=tenant,
                video_id=event.video_id,
                event_id=event.id,
                target_id=target_id,
                event_type=event.type,
                event_body=body,
                url=url,
                state="pending",
                attempt_count=0,
                next_attempt_at=now,
                created_at=now,
            )
            ref = DeliveryRef(event.video_id, event.id, target_id)
            claim = self.hooks.create_delivery(delivery, lease_s=LEASE_S)
            if claim is None:
                existing = self.hooks.get_delivery(event.video_id, event.id, target_id)
                if existing is not None and existing.state not in ("succeeded", "failed"):
                    self.enqueue(ref)
                return
            outcome = self._attempt(claim, now)
            if outcome.wait_s is not None:
                self.enqueue(ref, outcome.wait_s)

        if len(targets) == 1:
            first_attempt(targets[0])
        else:
            with ThreadPoolExecutor(max_workers=len(targets)) as pool:
                list(pool.map(in_context(first_attempt), targets))
        return [target for target, _ in targets]

    def enqueue(self, ref: DeliveryRef, delay_s: float = 0) -> None:
        self.queues.send_delivery(ref, delay_s)

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
            secret = self._tenant_secret(delivery.tenant)
            if secret is None:
                return "the tenant has no webhook signing secret"
            return delivery.url, [secret], None
        endpoint = self.hooks.get_endpoint(delivery.tenant, delivery.target_id)
        if endpoint is None:
            return "the endpoint was deleted"
        if endpoint.disabled_at is not None:
            return f"the endpoint is disabled ({endpoint.disabled_reason})"
        return endpoint.url, endpoint.signing_secrets(now), endpoint

    def _tenant_secret(self, tenant: str) -> str | None:
        """The tenant's signing secret, kept for a few minutes: it never changes once made, and every delivery to
        a job's webhook_url needs it."""
        now = self.clock()
        cached = self._secrets.get(tenant)
        if cached is not None and cached[1] > now:
            return cached[0]
        secret = self.tenants.webhook_secret(tenant)
        if secret is not None:
            self._secrets[tenant] = (secret, now + SECRET_TTL_S)
        return secret

    def _dead_letter(self, delivery: Delivery) -> None:
        ref = DeliveryRef(delivery.video_id, delivery.event_id, delivery.target_id)
        self.queues.send_dead_letter(ref, delivery_id=delivery.id, reason=f"{MAX_ATTEMPTS} attempts failed")
        self.hooks.mark_dead_letter_sent(delivery)
