"""The poller's sweep: every in-flight job that is due, checked once, from a sparse write-sharded index (never a
scan). A check republishes an event a crash left unsent, submits a job the api could not, asks the upstream
how a task is doing, hands a finished one to the downloader, and ends a job whose worker (submit, stream,
download) was lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .catalog import get_model
from .config import Settings
from .errors import StaleJob, UpstreamError, UpstreamResultGone, UpstreamUnavailable
from .jobs import TERMINAL, Job
from .lifecycle import Lifecycle
from .obs import logger
from .queues import Queues
from .store.jobs import JobStore
from .submission import AdaptersFor, Submitter, adapter_of

MAX_DOWNLOAD_ATTEMPTS = 5


@dataclass
class SweepStats:
    sweeps: int = 0
    due: int = 0
    checked: int = 0
    stale: int = 0
    errors: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    # now - created_at of the oldest checked job that was not finished yet (None: none was): a job that keeps
    # growing older than the maximum job age is stuck, whatever its checks answer.
    oldest_inflight_age_s: float | None = None

    def add(self, other: SweepStats) -> None:
        self.sweeps += other.sweeps
        self.due += other.due
        self.checked += other.checked
        self.stale += other.stale
        self.errors += other.errors
        if other.oldest_inflight_age_s is not None:
            self.oldest_inflight_age_s = max(self.oldest_inflight_age_s or 0.0, other.oldest_inflight_age_s)
        for key, value in other.by_outcome.items():
            self.by_outcome[key] = self.by_outcome.get(key, 0) + value


def poll_interval(settings: Settings) -> Callable[[Job], float]:
    """How long until a job of this model is asked again (the catalog's interval, scaled locally)."""

    def interval(job: Job) -> float:
        spec = get_model(job.model)
        return (spec.poll_interval_s if spec else 15.0) * settings.poll_interval_scale

    return interval


class Poller:
    def __init__(
        self,
        settings: Settings,
        *,
        jobs: JobStore,
        lifecycle: Lifecycle,
        submitter: Submitter,
        queues: Queues,
        adapters: AdaptersFor,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.lifecycle = lifecycle
        self.submitter = submitter
        self.queues = queues
        self.adapters = adapters
        self.clock = clock
        self.interval = poll_interval(settings)

    # -- sweeps -------------------------------------------------------------------------------------------------

    def sweep_once(self, *, workers: int = 16) -> SweepStats:
        """Checks every due in-flight job once: one Query per shard on the sparse index, no scan."""
        stats = SweepStats(sweeps=1)
        now = self.clock()
        due = [job for shard in range(self.settings.inflight_shards) for job in self.jobs.due_jobs(shard, now)]
        stats.due = len(due)
        if not due:
            return stats
        unfinished = [job for job in due if job.state not in TERMINAL]
        if unfinished:
            stats.oldest_inflight_age_s = max(0.0, now - min(job.created_at for job in unfinished))
        with ThreadPoolExecutor(max_workers=min(workers, len(due))) as pool:
            for outcome in pool.map(self._check_safely, due):
                stats.checked += 1
                stats.by_outcome[outcome] = stats.by_outcome.get(outcome, 0) + 1
                if outcome == "stale":
                    stats.stale += 1
                elif outcome == "error":
                    stats.errors += 1
        return stats

    def sweep(self, *, until: float, tick_s: float = 1.0) -> SweepStats:
        """Sweeps until `until` (the scheduled invocation's budget), so jobs are checked at their own interval
        rather than once a minute."""
        total = SweepStats(sweeps=0)
        while True:
            total.add(self.sweep_once())
            if self.clock() + tick_s >= until:
                return total
            time.sleep(tick_s)

    def _check_safely(self, job: Job) -> str:
        try:
            return self.check(job)
        except StaleJob:
            return "stale"
        except Exception:  # one bad job must not stop the sweep; it stays due and is tried next time
            logger.exception("check failed", extra={"video_id": job.id})
            return "error"

    # -- one job ------------------------------------------------------------------------------------------------

    def check(self, job: Job) -> str:
        if not job.event_published:
            job = self.lifecycle.publish_pending(job)
            if job.state in TERMINAL:
                return "republished"
        if job.state in TERMINAL:
            if job.next_check_at is not None:
                self.jobs.mark_published(job)
            return "finished"
        now = self.clock()
        if job.state == "accepted":
            return self._check_accepted(job, now)
        if job.state == "downloading":
            return self._check_downloading(job, now)
        if now - job.created_at > self.settings.max_job_age_s:
            self.lifecycle.transition(
                job,
                "failed",
                error_code="upstream_timeout",
                error_message="The upstream did not finish the video in time.",
            )
            return "timeout"
        return self._poll(job, now)

    def _check_accepted(self, job: Job, now: float) -> str:
        spec = get_model(job.model)
        streaming = spec is not None and spec.streaming
        if job.submit_started_at is not None:
            # A streamer may wait for the first chunk as long as its read timeout; its lease covers that.
            lease_s = self.settings.stream_lease_s if streaming else self.settings.submit_lease_s
            if now - job.submit_started_at < lease_s:
                self.lifecycle.reschedule(job, job.submit_started_at + lease_s)
                return "submit_in_progress"
            # The submitter died mid-request: the upstream may have the task. Never submit twice.
            self.lifecycle.transition(
                job,
                "failed",
                error_code="upstream_stream_interrupted" if streaming else "upstream_submit_unknown",
                error_message=f"The {'stream' if streaming else 'submit'} was interrupted; not resubmitted, since "
                "the upstream may have accepted (and billed) it. Create the video again for a new try.",
            )
            return "submit_unknown"
        if job.submit_attempts == 0 and now - job.created_at < self.settings.submit_grace_s:
            # The api that created it is normally submitting right now.
            self.lifecycle.reschedule(job, job.created_at + self.settings.submit_grace_s)
            return "submit_pending"
        if now - job.created_at > self.settings.max_job_age_s:
            self.lifecycle.transition(
                job,
                "failed",
                error_code="upstream_unavailable",
                error_message="No upstream account took the video in time; it was never sent.",
            )
            return "timeout"
        if streaming:
            # Its stream message was lost, or the last try was refused: hand it to the streamer again (only the
            # streamer that takes the lease reads, so a duplicate message is harmless).
            self.lifecycle.reschedule(job, now + max(self.settings.stream_lease_s, self.interval(job)))
            self.queues.send_stream(job)
            return "stream_resent"
        claimed = self.lifecycle.save(job, self.submitter.leased(job, now))
        self.submitter.submit(claimed)
        return "submitted"

    def _check_downloading(self, job: Job, now: float) -> str:
        if job.download_attempts >= MAX_DOWNLOAD_ATTEMPTS:
            self.lifecycle.transition(
                job,
                "failed",
                error_code="download_failed",
                error_message="The finished video could not be saved after several attempts.",
            )
            return "download_failed"
        # The download message was lost or its worker died: send another (the downloader is idempotent).
        job = self.lifecycle.save(
            job,
            job.with_changes(
                download_attempts=job.download_attempts + 1, next_check_at=now + self.settings.download_lease_s
            ),
        )
        self.queues.send_download(job)
        return "download_resent"

    def _poll(self, job: Job, now: float) -> str:
        spec = get_model(job.model)
        if spec is not None and spec.streaming:
            # Nothing to poll: the streamer renews the lease while it reads, so a due job lost its worker.
            self.lifecycle.transition(
                job,
                "failed",
                error_code="upstream_stream_interrupted",
                error_message="The stream stopped before the video link arrived (its worker ended); not "
                "resubmitted, since the upstream may already have billed it.",
            )
            return "stream_lost"
        try:
            result = adapter_of(job, self.adapters).poll(job)
        except UpstreamResultGone as exc:
            self.lifecycle.transition(
                job,
                "expired",
                error_code=exc.code,
                error_message="The upstream no longer has this video (its retention ran out).",
            )
            return "expired"
        except UpstreamUnavailable as exc:
            self.lifecycle.reschedule(job, now + max(self.interval(job), exc.retry_after_s or 0.0))
            return "poll_retry"
        except UpstreamError as exc:
            self.lifecycle.transition(job, "failed", error_code=exc.code, error_message=exc.message)
            return "failed"
        next_check = now + self.interval(job)
        if result.state == "queued":
            self.lifecycle.reschedule(job, next_check)
            return "queued"
        if result.state == "in_progress":
            if job.state == "running" and result.progress <= job.progress:
                self.lifecycle.reschedule(job, next_check)
                return "unchanged"
            self.lifecycle.transition(
                job, "running", progress=max(result.progress, job.progress), next_check_at=next_check
            )
            return "progress"
        if result.state == "failed":
            self.lifecycle.transition(
                job,
                "failed",
                error_code=result.error_code or "upstream_failed",
                error_message=result.error_message or "The upstream failed to generate the video.",
            )
            return "failed"
        job = self.lifecycle.transition(
            job,
            "downloading",
            progress=max(job.progress, 99),
            result_url=result.content_url,
            download_attempts=1,
            next_check_at=now + self.settings.download_lease_s,
        )
        self.queues.send_download(job)
        return "downloading"
