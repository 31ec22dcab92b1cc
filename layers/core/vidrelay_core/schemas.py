"""Pydantic models of what the API sends and takes: the OpenAPI document is generated from them, and tests
validate real responses and events against them, so the published schema cannot drift from the wire.

Request validation itself lives in `requests.py`: it must produce OpenAI-shaped errors that name the field,
what was given and what is allowed, which pydantic's messages do not.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PublicStatus = Literal["queued", "in_progress", "completed", "failed"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoError(_Strict):
    code: str = Field(description="Machine-readable reason, e.g. upstream_failed, upstream_submit_unknown")
    message: str


class VideoOutput(_Strict):
    bytes: int
    sha256: str = Field(description="SHA-256 of the stored MP4, hex")
    duration_s: float = Field(description="Duration read from the MP4 header")
    width: int
    height: int
    s3_uri: str = Field(description="Where the MP4 is kept in the deployment's results bucket")


class VideoCost(_Strict):
    estimated_usd: float | None
    currency: Literal["USD"]


class VideoWebhook(_Strict):
    url: str
    events: list[str]


class VideoReference(_Strict):
    field: str = Field(examples=["input_reference", "files", "first_frame_image"])
    kind: Literal["image", "video"]
    content_type: str
    bytes: int
    width: int
    height: int


class Video(_Strict):
    """OpenAI's Video object, plus vidrelay's task_id, provider, metadata, output, cost and webhook."""

    id: str = Field(examples=["video_5f1c0a9e2b7d4c6a8e3f1b2d4c6a8e3f"])
    object: Literal["video"]
    model: str
    status: PublicStatus
    progress: int = Field(ge=0, le=100)
    created_at: int
    completed_at: int | None
    expires_at: int | None = Field(description="When the stored MP4 is deleted (retention)")
    prompt: str
    seconds: str = Field(description='A string, e.g. "4"')
    size: str = Field(examples=["1280x720"])
    error: VideoError | None
    remixed_from_video_id: str | None
    task_id: str = Field(description="Equal to id (clients written for task-style APIs read this field)")
    provider: str
    metadata: dict[str, str]
    options: dict[str, str] = Field(
        description="Upstream-specific options as sent, e.g. Veo resolution/aspectRatio/seed, Seedance aspect_ratio"
    )
    references: list[VideoReference] = Field(description="The reference inputs sent upstream, in upload order")
    output: VideoOutput | None
    cost: VideoCost
    usage: dict[str, int] | None = Field(description="What the upstream reported it used (chat token usage)")
    webhook: VideoWebhook | None


class VideoList(_Strict):
    object: Literal["list"]
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool


class VideoDeleted(_Strict):
    id: str
    object: Literal["video.deleted"]
    deleted: Literal[True]


class ModelList(_Strict):
    object: Literal["list"]
    data: list[dict[str, Any]] = Field(description="One entry per model: allowed seconds and sizes, price rule")


class ErrorDetail(_Strict):
    message: str = Field(description="Names the field, what was given and what is allowed")
    type: str = Field(examples=["invalid_request_error"])
    param: str | None = Field(examples=["seconds"])
    code: str | None = Field(examples=["invalid_value"])


class ErrorResponse(_Strict):
    error: ErrorDetail


class VideoEvent(_Strict):
    """The body of every webhook and SNS message (Standard Webhooks signed)."""

    id: str = Field(description="evt_…; the same on every delivery attempt (webhook-id header)")
    object: Literal["event"]
    created_at: int
    type: str = Field(examples=["video.completed"])
    data: Video


class ImageUrlReference(_Strict):
    image_url: str = Field(
        description="https URL of a JPEG, PNG or WebP (at most 20 MiB), fetched through the SSRF guard; or an "
        "s3:// URI in the tenant's intake bucket or of an upload from POST /v1/uploads"
    )


class FileReference(_Strict):
    image_url: str | None = Field(default=None, description="An image: https URL or s3:// URI")
    video_url: str | None = Field(default=None, description="An MP4 (Seedance): https URL or s3:// URI")


class CreateVideoRequest(_Strict):
    """The body of POST /v1/videos, as JSON or as multipart/form-data fields (then `input_reference` is a file)."""

    model: str = Field(examples=["sora-2"])
    prompt: str = Field(min_length=1)
    seconds: str | None = Field(
        default=None, description='The length: "4" | "8" | "12" for sora; the same as duration for Veo/Seedance'
    )
    duration: str | int | None = Field(
        default=None, description='Veo: the string "4" | "6" | "8"; Seedance: integer seconds 4-15 (default 5)'
    )
    resolution: Literal["720p", "1080p", "4k"] | None = Field(default=None, description="Veo")
    aspectRatio: Literal["16:9", "9:16"] | None = Field(default=None, description="Veo")  # seed 003 spells it so
    aspect_ratio: Literal["16:9", "9:16", "1:1"] | None = Field(default=None, description="Seedance")
    seed: str | int | None = Field(default=None, description="Veo: random seed")
    negative_prompt: str | None = Field(default=None, description="Veo")
    files: list[FileReference] | None = Field(
        default=None,
        description="Seedance references in upload order (@IMG_n / @VID_n count by it); files in multipart",
    )
    first_frame_image: ImageUrlReference | None = Field(default=None, description="Seedance: the opening frame")
    last_frame_image: ImageUrlReference | None = Field(default=None, description="Seedance: the closing frame")
    size: str | None = Field(default=None, examples=["1280x720"])
    metadata: dict[str, str] | None = Field(default=None, description="Up to 16 string pairs, echoed back")
    webhook_url: str | None = Field(default=None, description="Where signed events for this job are sent")
    webhook_events: list[str] | None = Field(default=None, description="Only these event types are sent")
    input_reference: ImageUrlReference | None = Field(
        default=None,
        description="Image-to-video: in JSON an image URL; in multipart a JPEG/PNG/WebP file of that name",
    )
    fit: Literal["crop", "pad", "none"] | None = Field(
        default=None,
        description="How the reference is made the requested size: cover and crop (default), fit and pad, or "
        "refuse any other size",
    )


class WebhookAttempt(_Strict):
    attempt: int
    at: int
    status: int | None = Field(description="The HTTP status the receiver answered; null when it never answered")
    latency_ms: int
    error: str | None
    manual: bool = False


class WebhookDelivery(_Strict):
    id: str = Field(examples=["dlv_3f1c0a9e2b7d4c6a8e3f1b2d"])
    object: Literal["webhook_delivery"]
    video_id: str
    event_id: str
    event_type: str
    target: str = Field(description='"job" for the job\'s webhook_url, else the endpoint id')
    url: str | None
    status: Literal["pending", "delivering", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: int | None
    attempts: list[WebhookAttempt]
    created_at: int


class DeliveryList(_Strict):
    object: Literal["list"]
    data: list[WebhookDelivery]


class WebhookEndpoint(_Strict):
    id: str = Field(examples=["we_5f1c0a9e2b7d4c6a8e3f1b2d"])
    object: Literal["webhook_endpoint"]
    url: str
    event_types: list[str] = Field(description="Empty: every event type")
    description: str
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    created_at: int
    secret_rotating_until: int | None = Field(description="Until when the previous secret also signs")


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: str = Field(description="whsec_…: shown only when created or rotated")


class WebhookEndpointList(_Strict):
    object: Literal["list"]
    data: list[WebhookEndpoint]


class WebhookEndpointDeleted(_Strict):
    id: str
    object: Literal["webhook_endpoint.deleted"]
    deleted: Literal[True]


class WebhookTestResult(_Strict):
    object: Literal["webhook_endpoint.test"]
    endpoint_id: str
    event: dict[str, Any]
    succeeded: bool
    status: int | None
    latency_ms: int
    error: str | None


class Upload(_Strict):
    id: str = Field(examples=["upload_5f1c0a9e2b7d4c6a8e3f1b2d"])
    object: Literal["upload"]
    filename: str
    content_type: str
    bytes: int
    method: Literal["PUT"]
    upload_url: str = Field(description="Presigned S3 PUT URL, valid for expires_at; send exactly `headers`")
    headers: dict[str, str]
    s3_uri: str = Field(description='Reference the file with {"image_url": s3_uri} or {"video_url": s3_uri}')
    expires_at: int


class UsageRow(_Strict):
    day: str = Field(examples=["2026-11-24"])
    model: str
    estimated_usd: float
    jobs: int


class UsageReport(_Strict):
    object: Literal["usage"]
    from_: str = Field(alias="from")
    to: str
    total_usd: float
    jobs: int
    data: list[UsageRow]
