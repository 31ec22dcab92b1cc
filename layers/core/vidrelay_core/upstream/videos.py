"""The `/v1/videos` dialect (seeds 002 and 004): OpenAI's Videos shape as the aggregators serve it.

Submit is JSON for text-to-video, and multipart/form-data with one `input_reference` file for image-to-video
(seed 004: "Content-Type must be multipart/form-data (not JSON)"); poll is `GET /v1/videos/{id}`; the MP4 comes
from `/v1/videos/{id}/content` with the account key (seed 002: "No direct video_url field").
"""

from __future__ import annotations

from typing import Any

import httpx

from ..errors import UpstreamAmbiguous, UpstreamRejected, UpstreamResultGone, UpstreamUnavailable
from ..jobs import Job
from .base import Account, ContentRequest, PollResult, SubmitResult, UpstreamState

# Seed 001 adds pending/running/succeeded for its own dialect; accepting them here costs nothing.
_STATUS: dict[str, UpstreamState] = {
    "queued": "queued",
    "pending": "queued",
    "in_progress": "in_progress",
    "running": "in_progress",
    "succeeded": "in_progress",
    "completed": "completed",
    "failed": "failed",
}

_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}

SUBMIT_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=20.0, pool=5.0)
POLL_TIMEOUT = httpx.Timeout(connect=5.0, read=10.0, write=10.0, pool=5.0)


class VideosAdapter:
    def __init__(self, account: Account, client: httpx.Client) -> None:
        self._account = account
        self._client = client

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._account.api_key}"}

    def submit(self, job: Job, reference: bytes | None = None) -> SubmitResult:
        body = {"model": job.model, "prompt": job.prompt, "seconds": job.seconds, "size": job.size}
        if job.reference_key is not None and reference is None:
            raise ValueError(f"{job.id}: image-to-video job submitted without its reference image")
        payload: dict[str, Any] = {"json": body}
        if reference is not None:
            content_type = job.reference_content_type or "image/png"
            filename = "reference." + _EXTENSIONS.get(content_type, "png")
            payload = {"data": body, "files": {"input_reference": (filename, reference, content_type)}}
        try:
            response = self._client.post(
                f"{self._account.base_url}/v1/videos",
                headers=self._headers(),
                timeout=SUBMIT_TIMEOUT,
                **payload,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached the upstream: safe to try again later.
            raise UpstreamUnavailable(
                f"upstream unreachable: {type(exc).__name__}", code="upstream_unavailable"
            ) from None
        except httpx.TransportError as exc:
            # The body may have been sent (a timeout or a reset while waiting for the answer): the upstream
            # may have created and will bill the task. Never resubmit blindly.
            raise UpstreamAmbiguous(
                f"no answer from the upstream after the request was sent ({type(exc).__name__})",
                code="upstream_submit_unknown",
            ) from None
        data = _json(response)
        if response.status_code == 429:
            raise UpstreamUnavailable(
                "upstream rate limit",
                code="upstream_rate_limited",
                status=429,
                retry_after_s=_retry_after(response),
            )
        if response.status_code >= 500:
            if isinstance(data.get("id"), str):
                raise UpstreamAmbiguous(
                    "upstream error after creating the task",
                    code="upstream_submit_unknown",
                    status=response.status_code,
                )
            raise UpstreamUnavailable(
                f"upstream answered {response.status_code}",
                code="upstream_unavailable",
                status=response.status_code,
                retry_after_s=_retry_after(response),
            )
        if response.status_code >= 400:
            raise UpstreamRejected(
                _error_message(data, response), code="upstream_rejected", status=response.status_code
            )
        task_id = data.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise UpstreamAmbiguous("upstream accepted without a task id", code="upstream_submit_unknown")
        return SubmitResult(
            task_id=task_id, state=_STATUS.get(str(data.get("status")), "queued"), progress=_progress(data)
        )

    def poll(self, job: Job) -> PollResult:
        assert job.upstream_task_id is not None
        try:
            response = self._client.get(
                f"{self._account.base_url}/v1/videos/{job.upstream_task_id}",
                headers=self._headers(),
                timeout=POLL_TIMEOUT,
            )
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"poll failed: {type(exc).__name__}", code="upstream_unavailable") from None
        if response.status_code == 404:
            # Seed 002: results are kept one day; after that the task answers 404.
            raise UpstreamResultGone("the upstream no longer has this task", code="upstream_expired", status=404)
        if response.status_code == 429 or response.status_code >= 500:
            raise UpstreamUnavailable(
                f"poll answered {response.status_code}",
                code="upstream_unavailable",
                status=response.status_code,
                retry_after_s=_retry_after(response),
            )
        data = _json(response)
        if response.status_code >= 400:
            raise UpstreamRejected(
                _error_message(data, response), code="upstream_rejected", status=response.status_code
            )
        raw = str(data.get("status", ""))
        state = _STATUS.get(raw)
        if state is None:
            raise UpstreamUnavailable(f"unknown upstream status {raw!r}", code="upstream_bad_status")
        error = data.get("error") if isinstance(data.get("error"), dict) else None
        return PollResult(
            state=state,
            progress=_progress(data),
            raw_status=raw,
            # Seed 002: "On status: failed, an error field is not always present".
            error_code=str(error.get("code")) if error and error.get("code") else None,
            error_message=str(error.get("message")) if error and error.get("message") else None,
        )

    def content_request(self, job: Job) -> ContentRequest:
        return ContentRequest(
            method="GET",
            url=f"{self._account.base_url}/v1/videos/{job.upstream_task_id}/content",
            headers=self._headers(),
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _progress(data: dict[str, Any]) -> int:
    try:
        return max(0, min(100, int(data.get("progress") or 0)))
    except (TypeError, ValueError):
        return 0


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _error_message(data: dict[str, Any], response: httpx.Response) -> str:
    error = data.get("error")
    if isinstance(error, dict) and error.get("message"):
        return f"upstream refused the job: {error['message']}"
    return f"upstream refused the job (HTTP {response.status_code})"
