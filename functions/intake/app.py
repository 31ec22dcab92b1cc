"""intake function: the S3 intake bucket's inbox (through the intake queue) and the results of its jobs.

Two queues feed it: S3 event notifications for `inbox/` (an upload becomes a job, exactly as `POST /v1/videos`
would make it), and the terminal events of intake jobs from the video-events topic (the result is written to
`outbox/`). An upload that must wait (a sidecar waiting for its image, a tenant over its rate limit) comes back
later (queues.come_back_later).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from vidrelay_core.obs import lambda_entry, logger
from vidrelay_core.queues import process_batch, unwrap_sns
from vidrelay_core.wiring import components

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


def record_handler(record: SQSRecord) -> None:
    parts = components()
    outcomes = parts.intake.handle_message(unwrap_sns(record.body))
    logger.info("intake message handled", extra={"outcomes": [o.result for o in outcomes]})
    waits = [o.retry_after_s for o in outcomes if o.retry_after_s is not None]
    if waits:
        parts.queues.come_back_later(parts.settings.intake_queue_url, record.body, record.receipt_handle, max(waits))


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_batch(event, record_handler, workers=1)
