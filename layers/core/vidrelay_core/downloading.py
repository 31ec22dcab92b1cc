"""Saving a finished video: the MP4 streamed from the upstream into S3, checked, hashed and measured, then the job
completed. Safe to run twice: the key is fixed, so a second run overwrites the same object, and only one run can
complete the job."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from .catalog import get_model
from .errors import StaleJob, TransferError, UpstreamUnavailable
from .jobs import State
from .lifecycle import Lifecycle
from .retries import Retries, recovered
from .store.jobs import JobStore
from .submission import AdaptersFor, adapter_of

# Tries of a transient download failure inside one invocation, before it is left to SQS redelivery.
TRANSIENT_DOWNLOAD_RETRIES = 2


class Downloader:
    def __init__(
        self,
        *,
        jobs: JobStore,
        lifecycle: Lifecycle,
        adapters: AdaptersFor,
        s3: Any,
        bucket: str,
        http: Callable[[], httpx.Client],
        retries: Retries,
        content_retry_delay_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.jobs = jobs
        self.lifecycle = lifecycle
        self.adapters = adapters
        self._s3 = s3
        self._bucket = bucket
        self._http = http
        self.retries = retries
        self.content_retry_delay_s = content_retry_delay_s
        self.clock = clock

    def download(self, video_id: str, *, deadline: float | None = None) -> str:
        """Streams the finished MP4 into S3 and completes the job. A failure worth another try is recorded on the
        job for the poller to send again later; a final one ends the job. Past the `deadline` (time.monotonic(),
        see transfer.download_deadline) nothing more is read or tried."""
        from .transfer import stream_url_to_s3

        job = self.jobs.get_job(video_id)
        if job is None or job.state != "downloading":
            return "skipped"
        request = adapter_of(job, self.adapters).content_request(job)
        key = f"videos/{job.tenant}/{job.id}.mp4"
        spec = get_model(job.model)
        not_ready_retries = spec.content_not_ready_retries if spec else 0
        not_ready_left = not_ready_retries
        transient_left = TRANSIENT_DOWNLOAD_RETRIES
        try:
            while True:
                try:
                    result = stream_url_to_s3(
                        self._http(),
                        request.method,
                        request.url,
                        headers=request.headers,
                        s3_client=self._s3,
                        bucket=self._bucket,
                        key=key,
                        metadata={"video-id": job.id, "tenant": job.tenant},
                        deadline=deadline,
                    )
                    break
                except TransferError as exc:
                    # Seed 003: Veo's /content answers 400 for a few seconds after `completed`; that is a wait,
                    # not a failure. A transient error (5xx, reset, cut body) is tried again here too, rather
                    # than after the queue's 16-minute visibility timeout; past that the message comes back.
                    if getattr(exc, "status", None) == 400 and not_ready_retries:
                        if not_ready_left == 0:
                            # Still not ready: try again later (SQS, then the poller), as for any transient error.
                            raise TransferError(
                                f"the content still answers 400 after {not_ready_retries} tries"
                            ) from exc
                        not_ready_left -= 1
                    elif exc.retryable and transient_left > 0:
                        transient_left -= 1
                    else:
                        raise
                    if deadline is not None and time.monotonic() + self.content_retry_delay_s > deadline:
                        raise TransferError("no time left in this invocation for another try") from exc
                    time.sleep(self.content_retry_delay_s)
        except TransferError as exc:
            if getattr(exc, "status", None) == 404:
                return self._finish(
                    video_id,
                    "expired",
                    error_code="upstream_expired",
                    error_message="The upstream no longer has this video.",
                )
            if not exc.retryable:
                return self._finish(video_id, "failed", error_code=exc.code, error_message=str(exc))
            return self._retry_later(video_id, exc)
        outcome = self._finish(video_id, "completed", output=result.output(), completed_at=self.clock(), progress=100)
        if outcome == "gone":
            # Deleted or canceled while the bytes were moving: do not keep what nobody can see.
            self._s3.delete_object(Bucket=result.bucket, Key=result.key)
        return outcome

    def _retry_later(self, video_id: str, error: TransferError) -> str:
        """A try that failed for now: recorded on the job (the Video object shows it) with the time of the next
        one, backing off; the poller sends the download again then, and fails the job after the most attempts."""
        for _ in range(5):
            job = self.jobs.get_job(video_id)
            if job is None or job.state != "downloading" or job.deleted_at is not None:
                return "skipped"
            try:
                self.retries.failed(job, "download", _as_upstream(error))
                return "retry"
            except StaleJob:
                continue
        raise StaleJob(video_id)

    def _finish(self, video_id: str, state: State, **changes: Any) -> str:
        for _ in range(5):
            job = self.jobs.get_job(video_id)
            if job is None or job.state == "canceled" or job.deleted_at is not None:
                return "gone"
            if job.state != "downloading":
                return "skipped"
            try:
                self.lifecycle.transition(recovered(job), state, **changes)
                return state
            except StaleJob:
                continue
        raise StaleJob(video_id)


def _as_upstream(error: TransferError) -> UpstreamUnavailable:
    status = getattr(error, "status", None)
    return UpstreamUnavailable(str(error), code=error.code, status=status)
