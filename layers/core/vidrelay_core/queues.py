"""The SQS adapter: every queue message vidrelay sends or reads is defined here, once.

  download queue   {"video_id", "attempt"}            a finished video to stream into S3 (downloading.py)
  stream queue     {"video_id"}                       a streaming job to hold (streaming.py)
  webhook queue    a video event (raw SNS delivery; an enveloped one is unwrapped), or
                   {"delivery": {video_id, event_id, target}}   one delivery to attempt (delivery.py)
  webhook DLQ      {"delivery": {..., "id"}, "reason"} a delivery whose last attempt failed
  intake queues    S3 event notifications and video events (intake.py reads those)

Messages are parsed into these models at the handler's edge, so a malformed one is a clear error there, not a
KeyError deep in a use case.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .jobs import Job
from .obs import in_context, logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from .config import Settings

# SQS refuses a visibility timeout over 12 h; a minute less leaves room for clock skew.
MAX_VISIBILITY_S = 43_200 - 60
# SQS delays a new message by at most 15 minutes.
MAX_DELAY_S = 900
# Records of one notifier batch handled side by side: as many as the event source mapping's BatchSize
# (template.yaml), so a batch takes about one attempt's time whatever its size.
BATCH_WORKERS = 10


# The messages are small and vidrelay writes them itself, so they are parsed by hand rather than with pydantic:
# importing pydantic would be most of a handler's cold start, for three fields.


def _field(data: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    value = data.get(name, default)
    # bool is an int to isinstance; no message field is a bool.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"queue message field {name!r}: expected {kind.__name__}, got {value!r}")
    return value


@dataclass(frozen=True)
class JobMessage:
    """A download or stream message: which job, and (downloads) which attempt sent it."""

    video_id: str
    attempt: int = 1

    @classmethod
    def parse(cls, data: dict[str, Any]) -> JobMessage:
        return cls(video_id=_field(data, "video_id", str), attempt=_field(data, "attempt", int, 1))


@dataclass
class EventMessage:
    """A video event as the topic publishes it (contract: VideoEvent); only what routing needs is read here,
    and the body goes on to receivers exactly as published (same keys, same order)."""

    id: str
    type: str
    data: dict[str, Any]
    published: dict[str, Any]
    # The job's tenant, from the message's `tenant` attribute (never part of the event body a receiver gets).
    tenant: str | None = None

    @classmethod
    def parse(cls, data: dict[str, Any], tenant: str | None = None) -> EventMessage:
        return cls(
            id=_field(data, "id", str),
            type=_field(data, "type", str),
            data=_field(data, "data", dict),
            published=data,
            tenant=tenant,
        )

    @property
    def video_id(self) -> str:
        return str(self.data["id"])

    def body(self) -> dict[str, Any]:
        return dict(self.published)


@dataclass(frozen=True)
class DeliveryRef:
    """One (event, target) delivery, as its queue message names it."""

    video_id: str
    event_id: str
    target_id: str

    def message(self) -> str:
        return json.dumps(
            {"delivery": {"video_id": self.video_id, "event_id": self.event_id, "target": self.target_id}}
        )


def unwrap_sns(body: str) -> dict[str, Any]:
    """The message body as JSON; an enveloped (non-raw) SNS subscription's envelope removed."""
    return _unwrapped(body)[0]


def _unwrapped(body: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The body, and the SNS message attributes an envelope carried ({} for a raw delivery: SQS has them)."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a queue message must be a JSON object")
    if data.get("Type") == "Notification" and "Message" in data:
        inner = json.loads(data["Message"])
        if not isinstance(inner, dict):
            raise ValueError("an SNS message must be a JSON object")
        attributes = data.get("MessageAttributes") or {}
        return inner, {str(k): str(v.get("Value")) for k, v in attributes.items() if isinstance(v, dict)}
    return data, {}


def job_message(body: str) -> JobMessage:
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a queue message must be a JSON object")
    return JobMessage.parse(data)


def webhook_message(body: str, attributes: dict[str, str] | None = None) -> EventMessage | DeliveryRef:
    """What arrived on the webhook queue: an event to fan out, or a delivery to attempt. `attributes` are the SQS
    message's string attributes (a raw SNS delivery puts the topic's message attributes there)."""
    data, enveloped = _unwrapped(body)
    if "delivery" in data:
        key = _field(data, "delivery", dict)
        return DeliveryRef(_field(key, "video_id", str), _field(key, "event_id", str), _field(key, "target", str))
    return EventMessage.parse(data, tenant={**enveloped, **(attributes or {})}.get("tenant"))


class NotDueYet(Exception):
    """Not a failure: the message goes back to its queue until it is worth looking at again (reported as a batch
    item failure, so SQS keeps it)."""


def process_batch(
    event: dict[str, Any], record_handler: Callable[[SQSRecord], object], *, workers: int
) -> PartialItemFailureResponse:
    """An SQS batch with its records handled side by side (a record is mostly waiting on a receiver), answered as
    a partial batch response: the records whose handler raised (NotDueYet included) stay on the queue."""
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSEvent

    records = list(SQSEvent(event).records)

    def run(record: SQSRecord) -> str | None:
        try:
            record_handler(record)
        except NotDueYet:
            return record.message_id
        except Exception:
            logger.exception("record failed; it comes back after its visibility timeout")
            return record.message_id
        return None

    if not records:
        return {"batchItemFailures": []}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(records)))) as pool:
        failed = [message_id for message_id in pool.map(in_context(run), records) if message_id]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


class Queues:
    def __init__(self, sqs: Any, settings: Settings) -> None:
        self._sqs = sqs
        self._settings = settings

    def send_download(self, job: Job) -> None:
        self._send(self._settings.download_queue_url, {"video_id": job.id, "attempt": job.download_attempts})

    def send_stream(self, job: Job) -> None:
        self._send(self._settings.stream_queue_url, {"video_id": job.id})

    def send_delivery(self, ref: DeliveryRef, delay_s: float = 0) -> None:
        self._sqs.send_message(
            QueueUrl=self._settings.webhook_queue_url,
            MessageBody=ref.message(),
            DelaySeconds=min(MAX_DELAY_S, max(0, int(delay_s))),
        )

    def send_dead_letter(self, ref: DeliveryRef, *, delivery_id: str, reason: str) -> None:
        delivery = {"video_id": ref.video_id, "event_id": ref.event_id, "target": ref.target_id, "id": delivery_id}
        self._send(self._settings.webhook_dlq_url, {"delivery": delivery, "reason": reason})

    def come_back_later(self, queue_url: str, body: str, receipt_handle: str, wait_s: float) -> None:
        """Brings a message back after `wait_s`. Within SQS's 15-minute delay it is sent again as a new, delayed
        copy (so waiting never counts towards the dead-letter limit; the consumers are idempotent, so a crash
        that leaves both copies is harmless) and the received one is done; a longer wait keeps the received
        one invisible until then (raises NotDueYet, so the batch reports it failed and SQS keeps it)."""
        wait = max(1, math.ceil(wait_s))
        if wait <= MAX_DELAY_S:
            self._sqs.send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=wait)
            return
        self.hide(queue_url, receipt_handle, wait)

    def hide(self, queue_url: str, receipt_handle: str, wait_s: float) -> None:
        """Keeps the received message invisible for `wait_s` (at most SQS's 12 h), then raises NotDueYet."""
        self._sqs.change_message_visibility(
            QueueUrl=queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=min(MAX_VISIBILITY_S, max(1, math.ceil(wait_s))),
        )
        raise NotDueYet(f"next look in {wait_s:.1f} s")

    def _send(self, queue_url: str, message: dict[str, Any]) -> None:
        self._sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))
