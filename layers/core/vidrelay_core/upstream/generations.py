"""The `/v1/video/generations` dialect (seed 001, Seedance 2.0): asynchronous tasks.

Submit is multipart/form-data: `model`, `prompt`, `duration` (integer seconds, sent as a form field),
`aspect_ratio`, repeated `files` parts in upload order (the prompt's `@IMG_n` / `@VID_n` count by it), and
`first_frame_image` / `last_frame_image`. The answer is `{"task_id", "status": "pending", "created_at"}`.
Poll is `GET /v1/video/generations/{task_id}`: `pending -> running -> succeeded -> completed`, and only
`completed` carries `video_url` — "a temporary signed URL" on another host, fetched without our key.
"""

from __future__ import annotations

from typing import Any

import httpx

from ..jobs import Job
from .base import (
    Account,
    ContentRequest,
    PollResult,
    References,
    SubmitResult,
    UpstreamUnavailable,
    bearer,
    get_task,
    progress_of,
    send_submit,
    submitted,
    upstream_error,
)

PATH = "/v1/video/generations"


class GenerationsAdapter:
    def __init__(self, account: Account, client: httpx.Client) -> None:
        self.account = account
        self._client = client

    def submit(self, job: Job, references: References = ()) -> SubmitResult:
        fields: list[tuple[str, Any]] = [
            ("model", job.model),
            ("prompt", job.prompt),
            ("duration", job.seconds),
            *job.options.items(),
        ]
        if len(references) != len(job.references):
            raise ValueError(f"{job.id}: submitted with {len(references)} of its {len(job.references)} references")
        # One list of parts keeps the repeated `files` in upload order, and text fields as filename-less parts
        # make the body multipart even for text-to-video (seed 001: "Content-Type: multipart/form-data").
        parts: list[tuple[str, tuple[str | None, Any, str | None]]] = [
            (name, (None, str(value), None)) for name, value in fields
        ]
        parts += [
            (stored.field, (f"{stored.field}-{number}.{stored.extension}", data, stored.content_type))
            for number, (stored, data) in enumerate(references, start=1)
        ]
        response = send_submit(
            self._client, f"{self.account.base_url}{PATH}", headers=bearer(self.account), files=parts
        )
        return submitted(response, "task_id")

    def poll(self, job: Job) -> PollResult:
        assert job.upstream_task_id is not None
        data, raw, state = get_task(self._client, self.account, f"{self.account.base_url}{PATH}/{job.upstream_task_id}")
        url = data.get("video_url")
        if state == "completed" and not (isinstance(url, str) and url.startswith(("https://", "http://"))):
            # Completed without a link: nothing to fetch yet; ask again rather than fail a finished video.
            raise UpstreamUnavailable("completed without a video_url", code="upstream_bad_status")
        code, message = upstream_error(data)
        return PollResult(
            state=state,
            # `succeeded` comes after the last running progress and before the link: show it as nearly done.
            progress=max(progress_of(data), 95 if raw == "succeeded" else 0),
            raw_status=raw,
            error_code=code,
            error_message=message,
            content_url=url if state == "completed" else None,
        )

    def content_request(self, job: Job) -> ContentRequest:
        if not job.result_url:
            raise ValueError(f"{job.id}: no video_url recorded")
        # A signed URL on another host: our key must never go there (SPEC §2).
        return ContentRequest(method="GET", url=job.result_url, headers={})
