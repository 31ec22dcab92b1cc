"""The job lifecycle every use case shares: a transition is one conditional write, then one event.

The event is recorded on the job in the same write (the outbox) before it is sent, so a crash between the write
and the publish is repaired by the poller, which republishes it with the same event id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from . import ids
from .errors import StaleJob
from .events import EventPublisher
from .jobs import EVENT_FOR_STATE, TERMINAL, Job, State
from .store.jobs import JobStore
from .subscriptions import Subscriptions

# "subscribed": a video.in_progress event is published only when a webhook target wants it; "always": every one
# (for consumers subscribed to the events topic themselves).
ProgressEvents = Literal["subscribed", "always"]

PROGRESS_EVENT_EVERY_S = 5.0


class Lifecycle:
    def __init__(
        self,
        jobs: JobStore,
        publisher: EventPublisher,
        *,
        retention_days: int,
        outbox_grace_s: float,
        subscriptions: Subscriptions | None = None,
        progress_events: ProgressEvents = "always",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.jobs = jobs
        self.publisher = publisher
        # Without subscriptions every event is taken as wanted (tests of the lifecycle alone).
        self.subscriptions = subscriptions
        self.progress_events = progress_events
        self.retention_days = retention_days
        self.outbox_grace_s = outbox_grace_s
        self.clock = clock

    def transition(self, job: Job, state: State, **changes: Any) -> Job:
        """One conditional write (expected version) and, when the client-visible story moved on, one event."""
        if not job.event_published:
            job = self.publish_pending(job)
        now = self.clock()
        after = job.moved(state, **changes)
        event_type = EVENT_FOR_STATE[state]
        new_type = event_type != job.last_event_type
        progress_moved = (
            event_type == "video.in_progress"
            and after.progress != job.progress
            and now - job.last_progress_event_at >= PROGRESS_EVENT_EVERY_S
        )
        publish = (new_type or progress_moved) and not self._unwanted_progress(job, event_type)
        if publish:
            after = after.with_changes(
                last_event_id=ids.event_id(job.id, job.version + 1, event_type),
                last_event_type=event_type,
                event_published=False,
            )
            if event_type == "video.in_progress":
                after = after.with_changes(last_progress_event_at=now)
        if state in TERMINAL:
            # A finished job stays in the in-flight index only until its event is out.
            after = after.with_changes(next_check_at=now + self.outbox_grace_s if publish else None)
        stored = self.jobs.save(job, after)
        return self.publish_pending(stored) if publish else stored

    def _unwanted_progress(self, job: Job, event_type: str) -> bool:
        """A progress event no webhook target wants is not published (nor recorded: no outbox write for it)."""
        if event_type != "video.in_progress" or self.progress_events == "always" or self.subscriptions is None:
            return False
        return not self.subscriptions.wants(job, event_type)

    def publish_pending(self, job: Job) -> Job:
        """Sends the job's recorded event if it has not gone out yet, then marks it sent."""
        if job.event_published or not job.last_event_id:
            return job
        wanted = self.subscriptions is None or self.subscriptions.wants(job, str(job.last_event_type))
        self.publisher.publish(job, retention_days=self.retention_days, webhooks=wanted)
        try:
            return self.jobs.mark_published(job)
        except StaleJob:
            # Someone moved the job on meanwhile; the event went out, and is idempotent by id anyway.
            return job

    def save(self, before: Job, after: Job) -> Job:
        """A write that is no transition (a lease, an attempt count): conditional on the version, no event."""
        return self.jobs.save(before, after)

    def reschedule(self, job: Job, at: float) -> Job:
        return self.jobs.reschedule(job, at)
