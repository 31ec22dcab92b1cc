"""Deliveries whose worker died mid-attempt, and redeliveries whose message was lost, still end.

Driven through the Notifier against real moto with the harness clock: a claimed attempt that is never finished
(the worker died after POSTing, or while the receiver trickled its answer) counts as an attempt once its lease
runs out, so the schedule still reaches its end; and asking again for a delivery that is still pending puts a
message back rather than refusing.
"""

from __future__ import annotations

from vidrelay_core.delivery import LEASE_S, MAX_ATTEMPTS
from vidrelay_core.ledger import JOB_TARGET
from vidrelay_core.queues import DeliveryRef, EventMessage

from .conftest import Harness, Process, Tenant


def finish_jobs(h: Harness, p: Process, tenant: Tenant) -> None:
    """The stack is shared: leave no job in flight for the next test's sweeps to find."""
    h.converge(p, tenant)


def queued_delivery(h: Harness, p: Process, tenant: Tenant, case: str) -> DeliveryRef:
    """Creates a job and fans its video.queued event out: one pending delivery to the job's webhook_url."""
    job = p.parts.create.create(tenant.name, h.request(case), idempotency_key=None)
    for message in h.receive_all(h.stack.webhook_queue):
        body = h.body_of(message)
        h.delete(h.stack.webhook_queue, message)
        if "delivery" not in body and body["data"]["id"] == job.id and body["type"] == "video.queued":
            assert p.parts.delivery.fan_out(EventMessage.model_validate(body)) == [JOB_TARGET]
            return DeliveryRef(job.id, str(body["id"]), JOB_TARGET)
    raise AssertionError("the queued event never reached the webhook queue")


def die_mid_attempt(h: Harness, p: Process, ref: DeliveryRef) -> None:
    delivery = p.parts.hooks.get_delivery(ref.video_id, ref.event_id, ref.target_id)
    assert delivery is not None
    assert p.parts.hooks.claim(delivery, now=h.clock(), lease_s=LEASE_S) is not None
    # ... and the worker is gone: no finish, no message deleted.


def test_an_interrupted_attempt_counts_and_the_delivery_goes_on(harness: Harness) -> None:
    h, p, tenant = harness, harness.process(), harness.new_tenant()
    ref = queued_delivery(h, p, tenant, "interrupted")
    die_mid_attempt(h, p, ref)

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
    ref = queued_delivery(h, p, tenant, "killer")
    for _ in range(MAX_ATTEMPTS):
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
    ref = queued_delivery(h, p, tenant, "nudge")
    for message in h.receive_all(h.stack.webhook_queue):  # the delivery's own message is lost
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
    assert [d.status for d in h.stack.receiver.for_case("nudge")][:1] == [200]
    finish_jobs(h, p, tenant)
