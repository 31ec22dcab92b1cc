"""streamer function: holds a streaming job's one upstream request (seed 000, up to 15 minutes), writes its
progress, and hands the video link to the downloader (SQS, one message per video)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from vidrelay_core.obs import keys, lambda_entry, logger
from vidrelay_core.queues import job_message, process_batch
from vidrelay_core.wiring import components

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


def record_handler(record: SQSRecord) -> str:
    message = job_message(record.body)
    keys(video_id=message.video_id)
    # A stream is never retried by raising: once it started it may be billed, so every outcome is final here
    # except a refusal before the start, which is left for the poller to hand back.
    outcome = components().streamer.stream(message.video_id)
    logger.info("stream finished", extra={"outcome": outcome})
    return outcome


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_batch(event, record_handler, workers=1)
