"""The SNS adapter: video events (OpenAI webhook event shape, SPEC §5) built from a job and published.

Message attributes let subscriptions filter without reading the body: `type`, `tenant`, `webhooks` (`yes` when a
webhook target wants the event: the webhook queue subscribes to those only, subscriptions.py) and `origin: intake`
for jobs of the S3 intake (the intake's results queue subscribes to those only).
"""

from __future__ import annotations

import json
import time
from typing import Any

from .contract import Video, VideoEvent
from .jobs import Job

MAX_EVENT_BYTES = 20 * 1024


def envelope(job: Job, *, retention_days: int) -> dict[str, Any]:
    """The event for the job's last transition. Built from the job, so a republish after a crash is identical
    in id, type and data."""
    assert job.last_event_id and job.last_event_type
    event = VideoEvent(
        id=job.last_event_id,
        object="event",
        created_at=int(job.updated_at or time.time()),
        type=job.last_event_type,
        data=Video.from_job(job, retention_days=retention_days),
    ).model_dump(mode="json")
    if len(json.dumps(event)) > MAX_EVENT_BYTES:
        # Only a huge prompt can push it over; clients can fetch the whole object by data.id.
        event["data"]["prompt"] = event["data"]["prompt"][:1000]
    return event


class EventPublisher:
    def __init__(self, topic_arn: str, *, sns: Any) -> None:
        self._sns = sns
        self._topic_arn = topic_arn

    def publish(self, job: Job, *, retention_days: int, webhooks: bool = True) -> dict[str, Any]:
        """Publishes the job's last event and answers it."""
        event = envelope(job, retention_days=retention_days)
        attributes = {
            "type": {"DataType": "String", "StringValue": event["type"]},
            "tenant": {"DataType": "String", "StringValue": job.tenant},
            "webhooks": {"DataType": "String", "StringValue": "yes" if webhooks else "no"},
        }
        if job.intake is not None:
            attributes["origin"] = {"DataType": "String", "StringValue": "intake"}
        self._sns.publish(
            TopicArn=self._topic_arn,
            Message=json.dumps(event, separators=(",", ":")),
            MessageAttributes=attributes,
        )
        return event
