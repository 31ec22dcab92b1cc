"""Deliveries whose worker died mid-attempt, and redeliveries whose message was lost, still end.

Driven through the Notifier against real moto with the harness clock: a claimed attempt that is never finished
(the worker died after POSTing, or while the receiver trickled its answer) counts as an attempt once its lease
runs out, so the schedule still reaches its end; and asking again for a delivery that is still pending puts a
message back rather than refusing.
"""

from __future__ import annotations

import pytest
from vidrelay_core.delivery import LEASE_S, MAX_ATTEMPTS
from vidrelay_core.ledger import JOB_TARGET
from vidrelay_core.queues import DeliveryRef, EventMessage

from .conftest import CallLog, Crash, Harness, Process, Tenant


def finish_jobs(h: Harness, p: Process, tenant: Tenant) -> None:
    """The stack is shared: leave no job in flight for the next test's sweeps to find."""
    h.converge(p, tenant)


def queued_event(h: Harness, p: Process, tenant: Tenant, case: str) -> EventMessage:
    """Creates a job and takes its video.queued event off the webhook queue."""
    job = p.parts.create.create(tenant.name, h.request(case), idempotency_key=None)
    for message in h.receive_all(h.stack.webhook_queue):
        body = h.body_of(message)
        h.delete(h.stack.webhook_queue, message)
        if "delivery" not in body and body["data"]["id"] == job.id and body["type"] == "video.queued":
            return EventMessage.parse(body)
    raise AssertionError("the queued event never reached the webhook queue")


def queued_delivery(h: Harness, p: Process, tenant: Tenant, case: str) -> DeliveryRef:
    """Fans a job's video.queued event out with a notifier that dies during the first attempt (the fan-out
    attempts at once): one delivery to the job's webhook_url, taken, its worker gone."""
    event = queued_event(h, p, tenant, case)
    dying = h.process(CallLog(crash_on="http.POST /hooks/{case}", when="before"))
    with pytest.raises(Crash):
        dying.parts.delivery.fan_out(event)
    delivery = p.parts.hooks.get_delivery(event.video_id, event.id, JOB_TARGET)
    assert delivery is not None and delivery.state == "delivering" and delivery.attempt_count == 0
    return DeliveryRef(event.video_id, event.id, JOB_TARGET)


def die_mid_attempt(h: Harness, p: Process, ref: DeliveryRef) -> None:
    delivery = p.parts.hooks.get_delivery(ref.video_id, ref.event_id, ref.target_id)
    assert delivery is not None
    assert p.parts.hooks.claim(delivery, now=h.clock(), lease_s=LEASE_S) is not None
    # ... and the worker is gone: no finish, no message deleted.


def test_an_interrupted_attempt_counts_and_the_delivery_goes_on(harness: Harness) -> None:
    h, p, tenant = harness, harness.process(), harness.new_tenant()
    ref = queued_delivery(h, p, tenant, "interrupted")

    waiting = p.parts.delivery.process(ref)  # the lease is live: another worker keeps off
    assert waiting.wait_s is not None and waiting.wait_s > LEASE_S - 5
    assert h.stack.receiver.for_case("interrupted") == []

    h.clock.advance(LEASE_S + 1)
    outcome = p.parts.delivery.process(ref)  # records the lost attempt, then waits for the next one's time
    delivery = p.parts.hooks.get_delivery(ref.video_id, ref.event_id, ref.target_id)
    assert delivery is not None and delivery.state == "pending" and delivery.attempt_count == 1
    assert "interrupted" in str(delivery.attempts[0]["error"])
    assert outcome.wait_s is not None

    h.clock.advance(outcome.wait_s + 0.1)
    assert p.parts.delivery.process(ref).done
    delivery = p.parts.hooks.get_delivery(ref.video_id, ref.event_id, ref.target_id)
    assert delivery is not None and delivery.state == "succeeded" and delivery.attempt_count == 2
    assert [d.status for d in h.stack.receiver.for_case("interrupted")][:1] == [200]
    finish_jobs(h, p, tenant)


def test_a_receiver_that_kills_every_worker_still_ends_in_the_dead_letter_queue(harness: Harness) -> None:
    h, p, tenant = harness, harness.process(), harness.new_tenant()
    ref = queued_delivery(h, p, tenant, "killer")  # the first attempt's worker dies
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            die_mid_attempt(h, p, ref)
        h.clock.advance(LEASE_S + 1)
        outcome = p.parts.delivery.process(ref)
        if outcome.wait_s is not None:
            h.clock.advance(outcome.wait_s + 0.1)
    delivery = p.parts.hooks.get_delivery(ref.video_id, ref.event_id, ref.target_id)
    assert delivery is not None
    assert (delivery.state, delivery.attempt_count, delivery.dead_lettered) == ("failed", MAX_ATTEMPTS, True)
    dlq = h.stack.resources.queue_url("WebhookDeadLetterQueue")
    dead = [h.body_of(m) for m in h.receive_all(dlq)]
    for message in h.receive_all(dlq):
        h.delete(dlq, message)
    assert [d["delivery"]["id"] for d in dead] == [delivery.id]
    finish_jobs(h, p, tenant)


def test_redeliver_of_a_pending_delivery_puts_its_message_back(harness: Harness) -> None:
    h, p, tenant = harness, harness.process(), harness.new_tenant()
    h.stack.receiver.statuses["/hooks/nudge"] = [500]  # the first attempt fails: a retry is scheduled
    event = queued_event(h, p, tenant, "nudge")
    assert p.parts.delivery.fan_out(event) == [JOB_TARGET]
    ref = DeliveryRef(event.video_id, event.id, JOB_TARGET)
    for message in h.receive_all(h.stack.webhook_queue):  # the retry's message is lost
        h.delete(h.stack.webhook_queue, message)
    delivery = p.parts.hooks.get_delivery(ref.video_id, ref.event_id, ref.target_id)
    assert delivery is not None and delivery.state == "pending"

    answered = p.parts.deliveries.redeliver(ref.video_id, delivery.id)
    assert answered.state == "pending"
    for _ in range(5):  # the notifier's event source mapping, with the clock moved on over any wait
        _, wait = h.consume_webhooks(p)
        h.clock.advance(wait + 0.1)
    delivery = p.parts.hooks.get_delivery(ref.video_id, ref.event_id, ref.target_id)
    assert delivery is not None and delivery.state == "succeeded"
    assert [d.status for d in h.stack.receiver.for_case("nudge")] == [500, 200]
    finish_jobs(h, p, tenant)
