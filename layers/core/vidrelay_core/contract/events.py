"""The event envelope (OpenAI's webhook event shape): the body of every webhook and SNS message."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, create_model

from ..jobs import EVENT_TYPES
from .base import ApiModel
from .create import EventType
from .videos import Video


class VideoEvent(ApiModel):
    """Signed per Standard Webhooks; `data` is the Video object as it was after the change."""

    id: str = Field(description="evt_…; the same on every delivery attempt (webhook-id header)")
    object: Literal["event"]
    created_at: int
    type: EventType = Field(examples=["video.completed"])
    data: Video


def _event_model(event_type: str) -> type[VideoEvent]:
    name = "".join(part.capitalize() for part in event_type.replace(".", "_").split("_")) + "Event"
    return create_model(
        name,
        __base__=VideoEvent,
        __doc__=f"Sent when a video becomes `{event_type.split('.', 1)[1]}`.",
        type=(Literal[event_type], Field(examples=[event_type])),
    )


# One model per event type, for the document's `webhooks`.
EVENT_MODELS: dict[str, type[VideoEvent]] = {event_type: _event_model(event_type) for event_type in EVENT_TYPES}
