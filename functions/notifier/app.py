"""notifier function: fans each video event out to its webhook targets and drives every delivery's schedule.

Two kinds of message arrive on the webhook queue (queues.py): events from the SNS topic, fanned out into one
delivery message per target, and those delivery messages. A delivery that must wait (not due yet, or failed and
scheduled again) stays on the queue, invisible until it is due, and is reported as a batch item failure.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from vidrelay_core.obs import logger, metrics
from vidrelay_core.queues import EventMessage, webhook_message
from vidrelay_core.wiring import components

# A batch whose every delivery is waiting is not an error: all of them are reported as failures and stay queued.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> None:
    parts = components()
    message = webhook_message(record.body)
    if isinstance(message, EventMessage):
        logger.append_keys(video_id=message.video_id, event_id=message.id)
        parts.delivery.fan_out(message)
        return
    logger.append_keys(video_id=message.video_id, event_id=message.event_id, target=message.target_id)
    outcome = parts.delivery.process(message)
    if outcome.wait_s is not None:
        parts.queues.hide(parts.settings.webhook_queue_url, record.receipt_handle, outcome.wait_s)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
