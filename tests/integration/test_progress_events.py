"""`video.in_progress` goes out when progress changes, at most once per 5 s per job; terminal events always.

The poller moves a running job by `Lifecycle.transition(job, "running", progress=…)`; here the test drives that
entry point with the harness clock, against real moto, and reads what reached the SNS topic from the webhook
queue subscribed to it.
"""

from __future__ import annotations

from typing import Any

from vidrelay_core.lifecycle import PROGRESS_EVENT_EVERY_S

from .conftest import Harness


def published(h: Harness, video_id: str) -> list[dict[str, Any]]:
    events = []
    for message in h.receive_all(h.stack.webhook_queue):
        body = h.body_of(message)
        h.delete(h.stack.webhook_queue, message)
        if "delivery" not in body and body["data"]["id"] == video_id:
            events.append(body)
    return events


def test_progress_events_are_throttled_and_terminal_events_are_not(harness: Harness) -> None:
    h = harness
    assert PROGRESS_EVENT_EVERY_S == 5
    p = h.process()
    tenant = h.new_tenant()
    job = p.parts.create.create(tenant.name, h.request("progress"), idempotency_key=None)
    assert [e["type"] for e in published(h, job.id)] == ["video.queued"]
    job = p.parts.jobs.get_job(job.id)
    assert job is not None and job.state == "submitted"

    timeline = [(0.0, 10), (1.0, 20), (3.0, 30), (5.5, 40), (6.0, 50), (6.5, 50), (11.0, 70)]
    started = h.clock()
    for at, progress in timeline:
        h.clock.advance(started + at - h.clock())
        current = p.parts.jobs.get_job(job.id)
        assert current is not None
        p.parts.lifecycle.transition(current, "running", progress=progress)
    progress_events = published(h, job.id)
    assert [e["type"] for e in progress_events] == ["video.in_progress"] * 3
    assert [e["data"]["progress"] for e in progress_events] == [10, 40, 70]  # t=0, t=5.5, t=11
    assert len({e["id"] for e in progress_events}) == 3

    # Half a second after the last progress event, the terminal one still goes out at once.
    h.clock.advance(0.5)
    current = p.parts.jobs.get_job(job.id)
    assert current is not None
    p.parts.lifecycle.transition(current, "failed", error_code="upstream_failed", error_message="test")
    assert [e["type"] for e in published(h, job.id)] == ["video.failed"]


def test_events_no_webhook_target_wants_never_reach_the_webhook_queue(harness: Harness) -> None:
    # Given a tenant whose only endpoint wants terminal events, and a job without webhook_url
    h = harness
    p = h.process()
    tenant = h.new_tenant()
    p.parts.endpoints.create(
        tenant.name,
        url=h.stack.receiver.url("interests"),
        event_types=("video.completed", "video.failed"),
        description="terminal events only",
    )
    job = p.parts.create.create(tenant.name, h.request("interests", webhook_url=None), idempotency_key=None)
    mark = len(p.log.calls)

    # When it makes progress and fails
    current = p.parts.jobs.get_job(job.id)
    assert current is not None
    current = p.parts.lifecycle.transition(current, "running", progress=30)
    p.parts.lifecycle.transition(current, "failed", error_code="upstream_failed", error_message="test")

    # Then the progress was stored but not published, and only the failure reached the webhook queue (through
    # the subscription's filter on the `webhooks` attribute: video.queued was published, but for no target)
    assert p.log.labels("sns.publish", since=mark) == 1
    assert [e["type"] for e in published(h, job.id)] == ["video.failed"]
    stored = p.parts.jobs.get_job(job.id)
    assert stored is not None and stored.progress == 30
