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
from .retries import Retries, recovered
from .store.jobs import JobStore
from .submission import AdaptersFor, Submitter, adapter_of


@dataclass
class SweepStats:
    sweeps: int = 0
    due: int = 0
    checked: int = 0
    stale: int = 0
    errors: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    # The earliest next check after the sweep's moment among the jobs due within its horizon (None: no such job).
    next_due_at: float | None = None
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
        self.next_due_at = other.next_due_at


# DynamoDB's most keys per BatchGetItem.
BATCH_GET = 100


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
        retries: Retries,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.lifecycle = lifecycle
        self.submitter = submitter
        self.queues = queues
        self.adapters = adapters
        self.retries = retries
        self.clock = clock
        self.interval = poll_interval(settings)
        # Unchanged polls whose next check falls inside the running sweep are not written: the job's stored
        # next_check_at (still due) and when this sweep checks it again, by id. Void once the stored value moves.
        self._held: dict[str, tuple[float, float]] = {}
        self._horizon: float | None = None

    # -- sweeps -------------------------------------------------------------------------------------------------

    def sweep_once(self, *, until: float | None = None) -> SweepStats:
        """Checks every job due now, once: one Query per shard on the sparse keys-only index (no scan), the jobs
        read from the table in batches, the checks run side by side (`poller_concurrency`). The query reaches to
        `until` (default: now), so the sweep also learns when the next job falls due."""
        stats = SweepStats(sweeps=1)
        now = self.clock()
        horizon = now if until is None else max(now, until)
        self._horizon = until
        try:
            return self._sweep_once(stats, now, horizon)
        finally:
            self._horizon = None

    def _sweep_once(self, stats: SweepStats, now: float, horizon: float) -> SweepStats:
        keys = [key for shard in range(self.settings.inflight_shards) for key in self.jobs.due_keys(shard, horizon)]
        due_at = {key.video_id: self._due_at(key.video_id, key.next_check_at) for key in keys}
        due = [video_id for video_id, at in due_at.items() if at <= now]
        stats.next_due_at = min((at for at in due_at.values() if now < at <= horizon), default=None)
        stats.due = len(due)
        if not due:
            return stats
        workers = max(1, min(self.settings.poller_concurrency, len(due)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            batches = [due[i : i + BATCH_GET] for i in range(0, len(due), BATCH_GET)]
            jobs = [job for found in pool.map(self.jobs.get_jobs, batches) for job in found.values()]
            unfinished = [job for job in jobs if job.state not in TERMINAL]
            if unfinished:
                stats.oldest_inflight_age_s = max(0.0, now - min(job.created_at for job in unfinished))
            for outcome in pool.map(self._check_safely, jobs):
                stats.checked += 1
                stats.by_outcome[outcome] = stats.by_outcome.get(outcome, 0) + 1
                if outcome == "stale":
                    stats.stale += 1
                elif outcome == "error":
                    stats.errors += 1
        return stats

    def _due_at(self, video_id: str, stored_at: float) -> float:
        held = self._held.get(video_id)
        if held is None:
            return stored_at
        if held[0] != stored_at:  # written since: what is stored decides
            del self._held[video_id]
            return stored_at
        return held[1]

    def sweep(self, *, until: float, tick_s: float = 1.0) -> SweepStats:
        """Sweeps until `until` (the scheduled invocation's budget), so jobs are checked at their own interval
        rather than once a minute — and stops as soon as nothing in flight falls due before `until`, so an idle
        deployment's poller runs for one query per shard a minute."""
        total = SweepStats(sweeps=0)
        while True:
            stats = self.sweep_once(until=until)
            total.add(stats)
            now = self.clock()
            if stats.checked == 0 and stats.next_due_at is None:
                return total
            # After checks the due times moved: look again a tick later. Otherwise sleep to the next due job.
            wake = now + tick_s if stats.checked else max(now + tick_s, stats.next_due_at or now)
            if wake >= until:
                return total
            time.sleep(wake - now)

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
        if job.download_attempts >= self.settings.max_download_attempts:
            last = f" (last error: {job.last_error_message})" if job.last_error_message else ""
            self.lifecycle.transition(
                job,
                "failed",
                error_code="download_failed",
                error_message=f"The finished video could not be saved after {job.download_attempts} attempts{last}.",
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
            ended = self.retries.failed(job, "poll", exc, at_least_s=self.interval(job))
            return "poll_failed" if ended.is_terminal else "poll_retry"
        except UpstreamError as exc:
            self.lifecycle.transition(job, "failed", error_code=exc.code, error_message=exc.message)
            return "failed"
        next_check = now + self.interval(job)
        if result.state == "queued":
            self._later(job, next_check)
            return "queued"
        if result.state == "in_progress":
            if job.state == "running" and result.progress <= job.progress:
                self._later(job, next_check)
                return "unchanged"
            job = recovered(job)
            self.lifecycle.transition(
                job, "running", progress=max(result.progress, job.progress), next_check_at=next_check
            )
            return "progress"
        job = recovered(job)
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

    def _later(self, job: Job, at: float) -> None:
        """The next check at `at`; a run of failed polls that this poll ended is cleared from the job too (a new
        version then, since the Video object showed it). A poll that changed nothing and whose next check this
        sweep makes itself writes nothing: the job stays due in the index, and the sweep remembers when to check
        it (a poller that dies forgets, and the next one checks it at once: one poll early, never one lost)."""
        if job.retry_stage is None:
            if self._horizon is not None and job.next_check_at is not None and at < self._horizon:
                self._held[job.id] = (job.next_check_at, at)
                return
            self._held.pop(job.id, None)
            self.lifecycle.reschedule(job, at)
        else:
            self.lifecycle.save(job, recovered(job).with_changes(next_check_at=at))
