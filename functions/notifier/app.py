"""notifier function: signs and delivers each video event to its webhook targets (SQS fed by the SNS topic)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from vidrelay_core.obs import logger, metrics
from vidrelay_core.runtime import relay
from vidrelay_core.service import DeliveryFailed

processor = BatchProcessor(event_type=EventType.SQS)

# Backoff for a failed delivery, applied as the message's new visibility timeout (SQS redelivers it then).
BACKOFF_S = (5, 30, 120, 300, 600)


def record_handler(record: SQSRecord) -> None:
    event = json.loads(record.body)
    if event.get("Type") == "Notification" and "Message" in event:
        event = json.loads(event["Message"])  # an enveloped (non-raw) SNS subscription
    logger.append_keys(video_id=event["data"]["id"], event_id=event["id"])
    service = relay()
    try:
        service.notify(event)
    except DeliveryFailed as failed:
        receive_count = int(record.attributes.approximate_receive_count or 1)
        delay = BACKOFF_S[min(receive_count, len(BACKOFF_S)) - 1] * service.settings.webhook_retry_scale
        delay = max(delay, failed.retry_after_s or 0.0)
        service.sqs.change_message_visibility(
            QueueUrl=service.settings.webhook_queue_url,
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=min(round(delay), 43_200),
        )
        raise


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
