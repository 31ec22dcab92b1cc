"""The `/v1/videos` dialect (seeds 002, 003 and 004): OpenAI's Videos shape as the aggregators serve it.

Sora text-to-video is JSON; image-to-video is multipart/form-data with one `input_reference` file (seed 004:
"Content-Type must be multipart/form-data (not JSON)"). Veo 3.1 is image-to-video only on this path and takes its
length as `duration` (a string: "passing a number fails") plus `resolution`, `aspectRatio`, `seed` as form fields
(seed 003). Poll is `GET /v1/videos/{id}`; the MP4 comes from `/v1/videos/{id}/content` with the account key
(seed 002: "No direct video_url field").
"""

from __future__ import annotations

from typing import Any

import httpx

from ..catalog import get_model
from ..jobs import Job
from .base import (
    Account,
    ContentRequest,
    PollResult,
    References,
    SubmitResult,
    bearer,
    get_task,
    progress_of,
    send_submit,
    submitted,
    upstream_error,
)


class VideosAdapter:
    def __init__(self, account: Account, client: httpx.Client) -> None:
        self.account = account
        self._client = client

    def submit(self, job: Job, references: References = ()) -> SubmitResult:
        spec = get_model(job.model)
        length_field = spec.duration.field if spec and spec.duration.field else "seconds"
        body: dict[str, Any] = {"model": job.model, "prompt": job.prompt, length_field: job.seconds, "size": job.size}
        body.update(job.options)
        if job.references and not references:
            raise ValueError(f"{job.id}: image-to-video job submitted without its reference image")
        payload: dict[str, Any] = {"json": body}
        if references:
            # One file, named exactly input_reference (seeds 003/004); the catalog allows no more.
            stored, image = references[0]
            filename = f"reference.{stored.extension}"
            payload = {"data": body, "files": {"input_reference": (filename, image, stored.content_type)}}
        response = send_submit(
            self._client, f"{self.account.base_url}/v1/videos", headers=bearer(self.account), **payload
        )
        # Seed 003: "task_id matches id; downstream should standardize on task_id".
        return submitted(response, "task_id", "id")

    def poll(self, job: Job) -> PollResult:
        assert job.upstream_task_id is not None
        data, raw, state = get_task(
            self._client, self.account, f"{self.account.base_url}/v1/videos/{job.upstream_task_id}"
        )
        code, message = upstream_error(data)
        return PollResult(
            state=state, progress=progress_of(data), raw_status=raw, error_code=code, error_message=message
        )

    def content_request(self, job: Job) -> ContentRequest:
        return ContentRequest(
            method="GET",
            url=f"{self.account.base_url}/v1/videos/{job.upstream_task_id}/content",
            headers=bearer(self.account),
        )
