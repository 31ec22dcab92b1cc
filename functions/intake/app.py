"""intake function: the S3 intake bucket's inbox (through the intake queue) and the results of its jobs.

Two queues feed it: S3 event notifications for `inbox/` (an upload becomes a job, exactly as `POST /v1/videos`
would make it), and the terminal events of intake jobs from the video-events topic (the result is written to
`outbox/`). An upload that must wait (a sidecar waiting for its image, a tenant over its rate limit) is left on
its queue with a visibility timeout that ends when it should be looked at again, and reported as a batch item
failure so SQS keeps it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from vidrelay_core.notifications import MAX_VISIBILITY_S
from vidrelay_core.obs import logger, metrics
from vidrelay_core.runtime import intake

# A batch whose every upload is waiting is not an error: all of them are reported as failures and stay queued.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


# SQS delays a new message by at most 15 minutes.
MAX_DELAY_S = 900


class NotDueYet(Exception):
    """Not a failure: the message goes back to its queue until it is worth looking at again."""


def record_handler(record: SQSRecord) -> None:
    service = intake()
    outcomes = service.handle_message(json.loads(record.body))
    logger.info("intake message handled", extra={"outcomes": [o.result for o in outcomes]})
    waits = [o.retry_after_s for o in outcomes if o.retry_after_s is not None]
    if not waits:
        return
    wait = max(1, math.ceil(max(waits)))
    if wait <= MAX_DELAY_S:
        # A new, delayed copy rather than the same message made invisible: every receive counts towards the
        # dead-letter limit, and a burst held back by the rate limit may wait many windows. A crash between
        # the send and this message's deletion leaves two copies, which the intake (idempotent on bucket, key
        # and ETag) turns into one job.
        service.relay.sqs.send_message(
            QueueUrl=service.relay.settings.intake_queue_url, MessageBody=record.body, DelaySeconds=wait
        )
        return
    service.relay.sqs.change_message_visibility(
        QueueUrl=service.relay.settings.intake_queue_url,
        ReceiptHandle=record.receipt_handle,
        VisibilityTimeout=min(MAX_VISIBILITY_S, wait),
    )
    raise NotDueYet(f"next look in {max(waits):.1f} s")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
