"""Event envelopes (OpenAI webhook event shape, SPEC §5) and the SNS publisher."""

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
    def __init__(self, topic_arn: str, *, sns: Any = None) -> None:
        if sns is None:
            import boto3

            sns = boto3.client("sns")
        self._sns = sns
        self._topic_arn = topic_arn

    def publish(self, event: dict[str, Any], *, tenant: str, origin: str | None = None) -> None:
        """`origin` ("intake" for a job from the S3 intake) lets a subscription's filter policy pick the events
        of such jobs only (the intake's results queue)."""
        attributes = {
            "type": {"DataType": "String", "StringValue": event["type"]},
            "tenant": {"DataType": "String", "StringValue": tenant},
        }
        if origin is not None:
            attributes["origin"] = {"DataType": "String", "StringValue": origin}
        self._sns.publish(
            TopicArn=self._topic_arn,
            Message=json.dumps(event, separators=(",", ":")),
            MessageAttributes=attributes,
        )
