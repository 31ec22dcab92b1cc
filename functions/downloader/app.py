"""downloader function: streams a finished video from the upstream into S3 (SQS, one message per video)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from vidrelay_core.obs import keys, lambda_entry, logger
from vidrelay_core.queues import job_message, process_batch
from vidrelay_core.wiring import components

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> str:
    from vidrelay_core.transfer import download_deadline  # httpx: with the first download, not at import

    message = job_message(record.body)
    keys(video_id=message.video_id)
    # Stops in time to finish within the invocation, so the download lease (longer than the timeout) outlasts it.
    deadline = download_deadline(lambda_context.get_remaining_time_in_millis() / 1000)
    # A retryable failure raises: the message comes back after its visibility timeout.
    outcome = components().downloader.download(message.video_id, deadline=deadline)
    logger.info("download finished", extra={"outcome": outcome})
    return outcome


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # One download at a time: each may be gigabytes, and the function's memory is sized for one stream.
    return process_batch(event, lambda record: record_handler(record, context), workers=1)
