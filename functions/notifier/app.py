"""notifier function: fans each video event out to its webhook targets and drives every delivery's schedule.

Two kinds of message arrive on the webhook queue (queues.py): events from the SNS topic, each fanned out to its
targets and attempted at once, and delivery messages, which carry a failed delivery's retries. A delivery that
must wait (not due yet) stays on the queue, invisible until it is due, and is reported as a batch item failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from vidrelay_core.obs import keys, lambda_entry
from vidrelay_core.queues import BATCH_WORKERS, EventMessage, process_batch, webhook_message
from vidrelay_core.wiring import components

if TYPE_CHECKING:
    # Only the return type: importing it loads Powertools' whole batch package (BatchProcessor, asyncio, every
    # stream event class), which the notifier never uses — its batches run through queues.process_batch.
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


def record_handler(record: SQSRecord) -> None:
    parts = components()
    attributes = {name: value.string_value or "" for name, value in record.message_attributes.items()}
    message = webhook_message(record.body, attributes)
    if isinstance(message, EventMessage):
        keys(video_id=message.video_id, event_id=message.id)
        parts.delivery.fan_out(message)
        return
    keys(video_id=message.video_id, event_id=message.event_id, target=message.target_id)
    outcome = parts.delivery.process(message)
    if outcome.wait_s is not None:
        parts.queues.hide(parts.settings.webhook_queue_url, record.receipt_handle, outcome.wait_s)


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # A batch's records wait on their receivers side by side, not one after another (each attempt may take 15 s).
    return process_batch(event, record_handler, workers=BATCH_WORKERS)
