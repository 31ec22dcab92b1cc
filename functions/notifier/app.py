"""notifier function: fans each video event out to its webhook targets and drives every delivery's schedule.

Two kinds of message arrive on the webhook queue: events from the SNS topic (raw, or enveloped if subscribed
without raw delivery), fanned out into one delivery message per target; and those delivery messages. A delivery
that must wait (not due yet, or failed and scheduled again) is left on the queue with a visibility timeout that
ends when it is due, and reported as a batch item failure so SQS keeps it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from vidrelay_core.notifications import MAX_VISIBILITY_S, DeliveryRef
from vidrelay_core.obs import logger, metrics
from vidrelay_core.runtime import notifier

# A batch whose every delivery is waiting is not an error: all of them are reported as failures and stay queued.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class NotDueYet(Exception):
    """Not a failure: the message goes back to the queue until its delivery's next attempt is due."""


def record_handler(record: SQSRecord) -> None:
    body = json.loads(record.body)
    if body.get("Type") == "Notification" and "Message" in body:
        body = json.loads(body["Message"])  # an enveloped (non-raw) SNS subscription
    service = notifier()
    if "delivery" not in body:
        logger.append_keys(video_id=body["data"]["id"], event_id=body["id"])
        service.fan_out(body)
        return
    ref = DeliveryRef.parse(body)
    logger.append_keys(video_id=ref.video_id, event_id=ref.event_id, target=ref.target_id)
    outcome = service.process(ref)
    if outcome.wait_s is None:
        return
    service.sqs.change_message_visibility(
        QueueUrl=service.settings.webhook_queue_url,
        ReceiptHandle=record.receipt_handle,
        VisibilityTimeout=min(MAX_VISIBILITY_S, max(1, math.ceil(outcome.wait_s))),
    )
    raise NotDueYet(f"next look in {outcome.wait_s:.1f} s")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
