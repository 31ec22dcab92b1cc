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
from ..errors import UpstreamAmbiguous, UpstreamRejected, UpstreamResultGone
from ..jobs import Job
from .base import (
    POLL_TIMEOUT,
    STATUS,
    Account,
    ContentRequest,
    PollResult,
    References,
    SubmitResult,
    UpstreamUnavailable,
    bearer,
    check_poll_answer,
    check_submit_answer,
    error_message,
    json_of,
    progress_of,
    send_submit,
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
        data = json_of(response)
        # Seed 003: "task_id matches id; downstream should standardize on task_id".
        task_id = data.get("task_id") or data.get("id")
        check_submit_answer(response, data, task_id)
        if not isinstance(task_id, str) or not task_id:
            raise UpstreamAmbiguous("upstream accepted without a task id", code="upstream_submit_unknown")
        return SubmitResult(
            task_id=task_id, state=STATUS.get(str(data.get("status")), "queued"), progress=progress_of(data)
        )

    def poll(self, job: Job) -> PollResult:
        assert job.upstream_task_id is not None
        try:
            response = self._client.get(
                f"{self.account.base_url}/v1/videos/{job.upstream_task_id}",
                headers=bearer(self.account),
                timeout=POLL_TIMEOUT,
            )
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"poll failed: {type(exc).__name__}", code="upstream_unavailable") from None
        if response.status_code == 404:
            # Seed 002: results are kept one day; after that the task answers 404.
            raise UpstreamResultGone("the upstream no longer has this task", code="upstream_expired", status=404)
        check_poll_answer(response)
        data = json_of(response)
        if response.status_code >= 400:
            raise UpstreamRejected(error_message(data, response), code="upstream_rejected", status=response.status_code)
        raw = str(data.get("status", ""))
        state = STATUS.get(raw)
        if state is None:
            raise UpstreamUnavailable(f"unknown upstream status {raw!r}", code="upstream_bad_status")
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
