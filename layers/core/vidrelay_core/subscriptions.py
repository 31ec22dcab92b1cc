"""Who wants a video event: the job's own webhook_url (with its webhook_events) and the tenant's enabled
endpoints (with their event types).

Asked when an event is published, so that events nobody receives cost no fan-out: each event carries a `webhooks`
message attribute (`yes`/`no`) on which the webhook queue's subscription filters, and a `video.in_progress` nobody
wants is not published at all (`progress_events: subscribed`; `always` publishes every one, for consumers of the
topic itself). The notifier still resolves the targets itself when it fans an event out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from .jobs import Job


class EndpointInterests(Protocol):
    def endpoint_interests(self, tenant: str) -> list[tuple[str, ...]]:
        """The event types of each enabled endpoint of the tenant (empty: every type)."""
        ...


def job_target_wants(webhook_url: str | None, webhook_events: Iterable[str], event_type: str) -> bool:
    """The job's own webhook_url takes every event unless webhook_events names the ones it wants."""
    events = list(webhook_events)
    return bool(webhook_url) and (not events or event_type in events)


def job_webhook(job: Job) -> dict[str, Any] | None:
    """The job's own webhook as the events carry it (`data.webhook`), or None."""
    return {"url": job.webhook_url, "events": list(job.webhook_events)} if job.webhook_url else None


class Subscriptions:
    def __init__(self, hooks: EndpointInterests) -> None:
        self._hooks = hooks

    def wants(self, job: Job, event_type: str) -> bool:
        """Whether any webhook target would receive `event_type` of `job` now."""
        if job_target_wants(job.webhook_url, job.webhook_events, event_type):
            return True
        return any(not types or event_type in types for types in self._hooks.endpoint_interests(job.tenant))
