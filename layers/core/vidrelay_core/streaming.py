"""Streaming jobs (seed 000, chat completions with `stream: true`): one upstream request, held for minutes, is
the whole job. The streamer takes a lease on the job, follows the stream (writing progress and renewing the lease
as it reads), and hands the video link at its end to the downloader. Nothing can be polled and nothing
resubmitted: a stream cut before the link may already be billed, so it fails with `upstream_stream_interrupted`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

from .errors import StaleJob, UpstreamAmbiguous, UpstreamRejected
from .inputs import Prepared
from .jobs import Job
from .lifecycle import PROGRESS_EVENT_EVERY_S, Lifecycle
from .obs import logger
from .queues import Queues
from .retries import recovered
from .store.jobs import JobStore
from .submission import AllAccountsRefused, Submitter
from .upstream import Adapter, StreamingAdapter
from .upstream.base import StreamUpdate

# A streamer renews its lease on the first chunk after a third of it ran out: room for a silent read in between.
STREAM_RENEWALS_PER_LEASE = 3


class Streamer:
    def __init__(
        self,
        *,
        jobs: JobStore,
        lifecycle: Lifecycle,
        submitter: Submitter,
        queues: Queues,
        stream_lease_s: float,
        download_lease_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.jobs = jobs
        self.lifecycle = lifecycle
        self.submitter = submitter
        self.queues = queues
        self.stream_lease_s = stream_lease_s
        self.download_lease_s = download_lease_s
        self.clock = clock

    def stream(self, video_id: str) -> str:
        """Drives one streaming job from its request to the download. Safe to run twice: only the worker whose
        conditional write takes the lease streams."""
        job = self.jobs.get_job(video_id)
        if job is None or job.state != "accepted" or job.submit_started_at is not None or job.deleted_at:
            return "skipped"
        now = self.clock()
        try:
            job = self.lifecycle.save(job, self.submitter.leased(job, now, self.stream_lease_s))
        except StaleJob:
            return "skipped"
        loaded = self.submitter.references(job)
        if isinstance(loaded, Job):
            return loaded.state if loaded.is_terminal else "retry"
        leased = job

        def follow(adapter: Adapter) -> str:
            return self._follow(leased, cast(StreamingAdapter, adapter), loaded)

        try:
            # The lease taken above must outlast every try made under it: the failover budget starts with it.
            return self.submitter.with_failover(job, follow, started=now)
        except AllAccountsRefused as refused:
            ended = self.submitter.refused(job, refused)
            return ended.state if ended.is_terminal else "retry"
        except StaleJob:
            return "stale"  # deleted, or declared lost by the poller, while streaming: stop reading

    def _follow(self, job: Job, adapter: StreamingAdapter, references: Prepared) -> str:
        """Reads one stream to its end. Raises UpstreamUnavailable only before the upstream accepted anything."""
        lease_s = self.stream_lease_s
        last_write = self.clock()
        started = False
        try:
            for update in adapter.stream(job, references):
                now = self.clock()
                if not started:
                    started = True
                    job = self.lifecycle.transition(
                        recovered(job),
                        "running",
                        upstream_task_id=update.task_id or f"stream-{job.id}",
                        upstream_account=adapter.account.name,
                        submit_started_at=None,
                        progress=0,
                        next_check_at=now + lease_s,
                    )
                    last_write = now
                if update.content_url is not None or update.failed is not None:
                    return self._finish(job, update)
                progress = update.progress if update.progress is not None else job.progress
                moved = progress > job.progress and now - last_write >= PROGRESS_EVENT_EVERY_S
                if moved or now - last_write >= lease_s / STREAM_RENEWALS_PER_LEASE:
                    job, last_write = self._renew(job, progress, now), now
        except UpstreamAmbiguous as exc:
            self.lifecycle.transition(
                job,
                "failed",
                upstream_account=adapter.account.name,
                error_code="upstream_stream_interrupted",
                error_message=f"{exc.message}; not resubmitted, since the upstream may already have billed it. "
                "Create the video again for a new try.",
            )
            return "interrupted"
        except UpstreamRejected as exc:
            self.lifecycle.transition(job, "failed", error_code=exc.code, error_message=exc.message)
            return "failed"
        self.lifecycle.transition(
            job,
            "failed",
            error_code="upstream_stream_interrupted",
            error_message="The stream ended without a video link; not resubmitted, since the upstream may "
            "already have billed it.",
        )
        return "interrupted"

    def _renew(self, job: Job, progress: int, now: float) -> Job:
        """Writes progress and renews the stream's lease. A storage hiccup must not end a stream the upstream
        is billing: it is logged and the next chunk tries again (the lease has room for several)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.lifecycle.transition(
                job, "running", progress=max(progress, job.progress), next_check_at=now + self.stream_lease_s
            )
        except (BotoCoreError, ClientError):
            logger.warning("could not renew the stream lease; still reading", extra={"video_id": job.id})
            return job

    def _finish(self, job: Job, update: StreamUpdate) -> str:
        usage = dict(update.usage or {})
        if update.failed is not None:
            self.lifecycle.transition(
                job,
                "failed",
                usage=usage,
                error_code="upstream_failed",
                error_message=f"The upstream failed to generate the video: {update.failed}",
            )
            return "failed"
        job = self.lifecycle.transition(
            job,
            "downloading",
            result_url=update.content_url,
            usage=usage,
            progress=max(job.progress, 99),
            download_attempts=1,
            next_check_at=self.clock() + self.download_lease_s,
        )
        self.queues.send_download(job)
        return "downloading"
