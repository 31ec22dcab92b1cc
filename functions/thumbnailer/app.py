"""thumbnailer function: derives a completed video's thumbnail and spritesheet from its stored MP4.

Subscribed to the events topic directly (filter: video.completed), so it costs nothing while idle. Lambda invokes
it asynchronously: an error raised here is retried twice, then the event goes to the on-failure queue.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes import SNSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from vidrelay_core.obs import keys, lambda_entry, logger
from vidrelay_core.wiring import components


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for record in SNSEvent(event).records:
        message = json.loads(record.sns.message)
        video_id = str(message["data"]["id"])
        keys(video_id=video_id, event_id=message.get("id"))
        outcomes[video_id] = components().thumbnailer.derive(video_id)
        logger.info("previews", extra={"outcome": outcomes[video_id]})
    return outcomes
