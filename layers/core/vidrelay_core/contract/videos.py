"""The Video object (OpenAI's, plus vidrelay's fields), its list and deletion, and the queries that read them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from ..jobs import EVENT_TYPES, PUBLIC_STATUS
from .base import ApiModel, RequestModel, given, invalid

if TYPE_CHECKING:
    from ..jobs import Job

PublicStatus = Literal[tuple(dict.fromkeys(PUBLIC_STATUS.values()))]  # type: ignore[valid-type]
# What `GET /v1/videos/{id}/content` can be asked for (OpenAI's variants).
CONTENT_VARIANTS: tuple[str, ...] = ("video", "thumbnail", "spritesheet")
MAX_LIST_LIMIT = 100
_LIMIT_TEXT = re.compile(r"[0-9]{1,3}")


class VideoError(ApiModel):
    code: str = Field(description="Machine-readable reason, e.g. upstream_failed, upstream_submit_unknown")
    message: str


class VideoOutput(ApiModel):
    bytes: int
    sha256: str = Field(description="SHA-256 of the stored MP4, hex")
    duration_s: float = Field(description="Duration read from the MP4 header")
    width: int
    height: int
    s3_uri: str = Field(description="Where the MP4 is kept in the deployment's results bucket")


class VideoCost(ApiModel):
    estimated_usd: float | None
    currency: Literal["USD"]


class VideoWebhook(ApiModel):
    url: str
    events: list[str]


class VideoReference(ApiModel):
    field: str = Field(examples=["input_reference", "files", "first_frame_image"])
    kind: Literal["image", "video"]
    content_type: str
    bytes: int
    width: int
    height: int


class VideoRetry(ApiModel):
    """An upstream failure vidrelay is retrying: shown while it lasts, null otherwise."""

    stage: Literal["submit", "poll", "download"] = Field(description="What keeps failing")
    attempts: int = Field(description="Failed tries of this stage so far")
    since: int = Field(description="When the first of them failed")
    next_attempt_at: int | None = Field(description="When the next try is due")
    last_error: VideoError = Field(description="What the last try answered")


class VideoPreview(ApiModel):
    content_type: str = Field(examples=["image/webp"])
    bytes: int
    width: int
    height: int


class VideoSpritesheet(VideoPreview):
    columns: int = Field(description="Tiles per row; tiles run left to right, then top to bottom")
    rows: int
    tile_width: int
    tile_height: int
    interval_s: float = Field(description="Seconds of video between two tiles; each shows the middle of its span")


class VideoVariants(ApiModel):
    """What `GET /v1/videos/{id}/content?variant=` serves for a completed video. The thumbnail and spritesheet
    are derived from the stored MP4 a few seconds after completion; if they cannot be (say, a codec that cannot
    be decoded), `error` says why and the video itself stays available."""

    available: list[Literal[CONTENT_VARIANTS]] = Field(  # type: ignore[valid-type]
        description="The variants that can be downloaded now"
    )
    status: Literal["pending", "ready", "failed"] = Field(
        description="pending: the thumbnail and spritesheet are being made; failed: they cannot be (see error)"
    )
    thumbnail: VideoPreview | None
    spritesheet: VideoSpritesheet | None
    error: VideoError | None


class Video(ApiModel):
    """OpenAI's Video object, plus vidrelay's task_id, provider, metadata, output, cost, webhook and retry."""

    id: str = Field(examples=["video_5f1c0a9e2b7d4c6a8e3f1b2d4c6a8e3f"])
    object: Literal["video"]
    model: str
    status: PublicStatus  # type: ignore[valid-type]
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
    retry: VideoRetry | None = Field(
        default=None, description="While a failing upstream is being retried: the stage, attempts and last error"
    )
    variants: VideoVariants | None = Field(
        default=None, description="Once completed: which of video, thumbnail and spritesheet can be downloaded"
    )

    @classmethod
    def from_job(cls, job: Job, *, retention_days: int) -> Video:
        error = None
        if job.state in ("failed", "canceled", "expired"):
            error = VideoError(
                code=job.error_code or job.state, message=job.error_message or f"The video job was {job.state}."
            )
        out = job.output
        output = (
            VideoOutput(
                bytes=out.bytes,
                sha256=out.sha256,
                duration_s=out.duration_s,
                width=out.width,
                height=out.height,
                s3_uri=out.s3_uri,
            )
            if out is not None
            else None
        )
        completed_at = int(job.completed_at) if job.completed_at else None
        return cls(
            id=job.id,
            object="video",
            model=job.model,
            status=job.public_status,
            progress=100 if job.state == "completed" else job.progress,
            created_at=int(job.created_at),
            completed_at=completed_at,
            expires_at=completed_at + retention_days * 86_400 if completed_at else None,
            prompt=job.prompt,
            seconds=job.seconds,
            size=job.size,
            error=error,
            remixed_from_video_id=None,
            # Seed 003's samples read `task_id`; it equals `id`.
            task_id=job.id,
            provider=job.provider,
            metadata=dict(job.metadata),
            options=dict(job.options),
            references=[
                VideoReference(
                    field=r.field,
                    kind=r.kind,
                    content_type=r.content_type,
                    bytes=r.bytes,
                    width=r.width,
                    height=r.height,
                )
                for r in job.references
            ],
            output=output,
            cost=VideoCost(estimated_usd=job.cost_usd, currency="USD"),
            usage=dict(job.usage) if job.usage else None,
            webhook=VideoWebhook(url=job.webhook_url, events=list(job.webhook_events) or list(EVENT_TYPES))
            if job.webhook_url
            else None,
            retry=_retry(job),
            variants=_variants(job),
        )


def _variants(job: Job) -> VideoVariants | None:
    if job.state != "completed" or job.output is None:
        return None
    thumbnail, spritesheet = job.preview("thumbnail"), job.preview("spritesheet")
    error = (
        VideoError(code=job.preview_error_code, message=job.preview_error_message or job.preview_error_code)
        if job.preview_error_code
        else None
    )
    return VideoVariants(
        available=["video", *(p.variant for p in (thumbnail, spritesheet) if p is not None)],
        status="failed" if error else "ready" if thumbnail and spritesheet else "pending",
        thumbnail=VideoPreview(
            content_type=thumbnail.content_type, bytes=thumbnail.bytes, width=thumbnail.width, height=thumbnail.height
        )
        if thumbnail
        else None,
        spritesheet=VideoSpritesheet(
            content_type=spritesheet.content_type,
            bytes=spritesheet.bytes,
            width=spritesheet.width,
            height=spritesheet.height,
            columns=spritesheet.columns,
            rows=spritesheet.rows,
            tile_width=spritesheet.tile_width,
            tile_height=spritesheet.tile_height,
            interval_s=spritesheet.interval_s,
        )
        if spritesheet
        else None,
        error=error,
    )


def _retry(job: Job) -> VideoRetry | None:
    if job.retry_stage not in ("submit", "poll", "download") or job.is_terminal:
        return None
    return VideoRetry(
        stage=job.retry_stage,  # type: ignore[arg-type]
        attempts=job.retry_attempts,
        since=int(job.retrying_since or job.updated_at),
        next_attempt_at=int(job.next_check_at) if job.next_check_at else None,
        last_error=VideoError(
            code=job.last_error_code or "upstream_error", message=job.last_error_message or "the upstream failed"
        ),
    )


class VideoList(ApiModel):
    object: Literal["list"]
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool

    @classmethod
    def of(cls, videos: list[Video], *, has_more: bool) -> VideoList:
        return cls(
            object="list",
            data=videos,
            first_id=videos[0].id if videos else None,
            last_id=videos[-1].id if videos else None,
            has_more=has_more,
        )


class VideoDeleted(ApiModel):
    id: str
    object: Literal["video.deleted"]
    deleted: Literal[True]


class ListQuery(RequestModel):
    """`GET /v1/videos?after=&limit=&order=`."""

    after: str | None = Field(default=None, description="A video id: the page starts after it")
    limit: int = Field(default=20, ge=1, le=MAX_LIST_LIMIT, description="Videos per page")
    order: Literal["asc", "desc"] = Field(default="desc", description="By creation time; newest first by default")

    @field_validator("after", mode="before")
    @classmethod
    def _after(cls, value: Any) -> Any:
        return value if given(value) else None

    @field_validator("limit", mode="before")
    @classmethod
    def _limit(cls, value: Any) -> Any:
        allowed = f"an integer from 1 to {MAX_LIST_LIMIT}"
        if isinstance(value, str) and not _LIMIT_TEXT.fullmatch(value):
            raise invalid(value, allowed)
        if isinstance(value, bool) or not isinstance(value, int | str) or not 1 <= int(value) <= MAX_LIST_LIMIT:
            raise invalid(value, allowed)
        return int(value)


class ContentQuery(RequestModel):
    """`GET /v1/videos/{id}/content?variant=`."""

    variant: Literal[CONTENT_VARIANTS] = Field(  # type: ignore[valid-type]
        default="video", description="The MP4, or the thumbnail / spritesheet derived from it"
    )


class VideoContentLink(ApiModel):
    """`GET /v1/videos/{id}/content_url`: the presigned URL the content route redirects to, as JSON. A page that
    sends its API key as a header cannot read a redirect's Location (fetch hides it), yet its `<video>` needs the
    URL."""

    object: Literal["video.content_url"]
    video_id: str
    variant: Literal[CONTENT_VARIANTS]  # type: ignore[valid-type]
    url: str = Field(description="A short-lived presigned S3 GET of the file; no API key needed")
    expires_at: int = Field(description="When the URL stops working")


class RemixBody(RequestModel):
    """`POST /v1/videos/{id}/remix` (OpenAI's): documented so clients see the field, refused as not offered."""

    prompt: str = Field(description="How the remix should differ from the original")
