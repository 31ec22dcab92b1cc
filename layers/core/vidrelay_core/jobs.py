"""The job: its fields and its state machine. How it looks to clients is `contract.Video.from_job`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

State = Literal["accepted", "submitted", "running", "downloading", "completed", "failed", "canceled", "expired"]

IN_FLIGHT: frozenset[str] = frozenset({"accepted", "submitted", "running", "downloading"})
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "canceled", "expired"})

# Every allowed move. A move not listed here is a bug or a late duplicate, never written.
TRANSITIONS: dict[str, frozenset[str]] = {
    # `running` too: a submit can be answered `in_progress` when the upstream starts at once (Relay.submit).
    "accepted": frozenset({"accepted", "submitted", "running", "failed", "canceled"}),
    "submitted": frozenset({"submitted", "running", "downloading", "failed", "canceled", "expired"}),
    "running": frozenset({"running", "downloading", "failed", "canceled", "expired"}),
    "downloading": frozenset({"downloading", "completed", "failed", "canceled", "expired"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "canceled": frozenset(),
    "expired": frozenset(),
}

# What a client sees: OpenAI's four statuses. `downloading` is still in progress for the client, because
# `completed` promises the MP4 is already in S3.
PUBLIC_STATUS: dict[str, str] = {
    "accepted": "queued",
    "submitted": "queued",
    "running": "in_progress",
    "downloading": "in_progress",
    "completed": "completed",
    "failed": "failed",
    "canceled": "failed",
    "expired": "failed",
}

EVENT_FOR_STATE: dict[str, str] = {
    "accepted": "video.queued",
    "submitted": "video.queued",
    "running": "video.in_progress",
    "downloading": "video.in_progress",
    "completed": "video.completed",
    "failed": "video.failed",
    "canceled": "video.canceled",
    "expired": "video.expired",
}

EVENT_TYPES: tuple[str, ...] = (
    "video.queued",
    "video.in_progress",
    "video.completed",
    "video.failed",
    "video.canceled",
    "video.expired",
)


class IllegalTransition(Exception):
    """A transition the state machine (TRANSITIONS) does not allow: a bug in the caller, never user input."""


@dataclass(frozen=True)
class Output:
    bytes: int
    sha256: str
    duration_s: float
    width: int
    height: int
    bucket: str
    key: str

    @property
    def s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Preview:
    """A picture derived from the stored MP4 (thumbnailing.py), kept beside it in the results bucket. A
    spritesheet is `columns` x `rows` tiles of `tile_width` x `tile_height`, one every `interval_s` seconds,
    left to right then top to bottom."""

    variant: Literal["thumbnail", "spritesheet"]
    key: str
    content_type: str
    bytes: int
    width: int
    height: int
    columns: int = 1
    rows: int = 1
    tile_width: int = 0
    tile_height: int = 0
    interval_s: float = 0.0


@dataclass(frozen=True)
class StoredReference:
    """A prepared reference input waiting in the results bucket (under `inputs/`) for (re)submission. `field` is
    the request field it came in (`input_reference`, `files`, `first_frame_image`, `last_frame_image`); the
    order of a job's references is the upload order, which Seedance's `@IMG_n` / `@VID_n` count by."""

    field: str
    key: str
    content_type: str
    kind: Literal["image", "video"]
    bytes: int
    width: int = 0
    height: int = 0

    @property
    def extension(self) -> str:
        return self.key.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class IntakeOrigin:
    """An S3 intake job's source: `inbox/<tenant>/<name>.png` in `bucket` gives `outbox/<tenant>/<name>.mp4`."""

    bucket: str
    name: str


@dataclass(frozen=True)
class Job:
    id: str
    tenant: str
    model: str
    family: str
    provider: str
    prompt: str
    seconds: str
    size: str
    created_at: float
    state: State = "accepted"
    version: int = 1
    progress: int = 0
    updated_at: float = 0.0
    completed_at: float | None = None
    upstream_task_id: str | None = None
    # When a submit was last started and not yet settled; a job found `accepted` with an old one may already
    # be billed upstream, so it is never submitted again (SPEC §1, upstream_submit_unknown).
    submit_started_at: float | None = None
    submit_attempts: int = 0
    download_attempts: int = 0
    error_code: str | None = None
    error_message: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    webhook_url: str | None = None
    webhook_events: tuple[str, ...] = ()
    output: Output | None = None
    cost_usd: float = 0.0
    price_rule: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    # Upstream-specific options under their seed names (Veo `resolution`, `aspectRatio`, `seed`,
    # `negative_prompt`; Seedance `aspect_ratio`), already validated against the catalog.
    options: dict[str, str] = field(default_factory=dict)
    # Reference inputs, stored under `inputs/` in the results bucket: a job record never holds their bytes.
    references: tuple[StoredReference, ...] = ()
    # Which of the family's upstream accounts took the job (its name, never its key): polls and the download
    # must go to the same account.
    upstream_account: str | None = None
    # Where the finished video can be fetched when the upstream hands out a link (Seedance's `video_url`, the
    # Markdown link of a chat stream). A short-lived signed URL: kept off the Video object and events.
    result_url: str | None = None
    # What the upstream reported it used (a chat stream's token `usage`).
    usage: dict[str, int] = field(default_factory=dict)
    # The outbox: the last transition's event, and whether it reached SNS. The poller republishes an event a
    # crash left unpublished, with the same id.
    last_event_id: str | None = None
    last_event_type: str | None = None
    event_published: bool = True
    last_progress_event_at: float = 0.0
    # Sparse in-flight index: present while the poller still has something to do with the job.
    inflight_shard: int = 0
    next_check_at: float | None = None
    deleted_at: float | None = None
    # Where an S3 intake job came from, so its result is written back there. None for jobs made by the API.
    intake: IntakeOrigin | None = None
    # A run of upstream failures being retried (retries.py): which stage, how many tries, since when, the last
    # error. Shown on the Video object as `retry`; cleared when the stage succeeds.
    retry_stage: str | None = None
    retry_attempts: int = 0
    retrying_since: float | None = None
    last_error_code: str | None = None
    last_error_message: str | None = None
    # The thumbnail and spritesheet derived after completion, or why none could be (a codec that cannot be
    # decoded, a broken stream): never a reason to fail the job, which stays completed either way.
    previews: tuple[Preview, ...] = ()
    preview_error_code: str | None = None
    preview_error_message: str | None = None

    @property
    def public_status(self) -> str:
        return PUBLIC_STATUS[self.state]

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL

    def preview(self, variant: str) -> Preview | None:
        return next((p for p in self.previews if p.variant == variant), None)

    def moved(self, state: State, **changes: Any) -> Job:
        """The job after a transition: the state machine is checked here, the version is bumped by the store."""
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.id}: {self.state} -> {state}")
        return replace(self, state=state, **changes)

    def with_changes(self, **changes: Any) -> Job:
        return replace(self, **changes)
