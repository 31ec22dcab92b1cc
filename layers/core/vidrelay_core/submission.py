"""Sending a job upstream: one failover loop over the family's accounts, shared by the submit of the polling
dialects (here) and the stream of the chat dialect (streaming.py).

A refusal that cannot have been billed (UpstreamUnavailable: connection refused, 429, 5xx without a task id, a
refused account) moves on to the next account; an ambiguous one (UpstreamAmbiguous: a timeout after the body
was sent) never does, since a second submit can be billed twice. Only a refusal from every account leaves the
job for another try.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from .errors import UpstreamAmbiguous, UpstreamError, UpstreamRejected, UpstreamUnavailable
from .inputs import Prepared, ReferenceInputs, ReferenceMissing
from .jobs import Job
from .lifecycle import Lifecycle
from .retries import Retries, recovered
from .upstream import Adapter

T = TypeVar("T")

# A refused submit moves to the next account only while this much time has passed since the first try: the api
# answers within 29 s and a submit lease lasts 60 s, so a try must not start when it could outrun either.
FAILOVER_BUDGET_S = 8.0

AdaptersFor = Callable[[str], Sequence[Adapter]]


class AllAccountsRefused(Exception):
    """Every account refused before it could have accepted the job (or the failover budget ran out)."""

    def __init__(self, last: UpstreamUnavailable | None) -> None:
        super().__init__(last.message if last else "no upstream account configured")
        self.last = last

    def error(self) -> UpstreamUnavailable:
        return self.last or UpstreamUnavailable("no upstream account is configured", code="upstream_unavailable")


def adapter_of(job: Job, adapters: AdaptersFor) -> Adapter:
    """The adapter of the account that took the job: polls and downloads go where the task is."""
    candidates = adapters(job.family)
    if job.upstream_account is None:
        return candidates[0]
    found = next((a for a in candidates if a.account.name == job.upstream_account), None)
    if found is None:
        # Asking another account about this task would answer 404 and expire a video that exists: wait until the
        # account is configured again (the job ends at its maximum age otherwise).
        raise UpstreamUnavailable(
            f"the upstream account {job.upstream_account!r} that has this task is not configured",
            code="upstream_account_missing",
        )
    return found


class Submitter:
    def __init__(
        self,
        lifecycle: Lifecycle,
        inputs: ReferenceInputs,
        adapters: AdaptersFor,
        *,
        retries: Retries,
        submit_lease_s: float,
        poll_interval: Callable[[Job], float],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lifecycle = lifecycle
        self.inputs = inputs
        self.adapters = adapters
        self.retries = retries
        self.submit_lease_s = submit_lease_s
        self.poll_interval = poll_interval
        self.clock = clock

    def with_failover(self, job: Job, attempt: Callable[[Adapter], T], *, started: float) -> T:
        """`attempt` with each of the family's accounts in order, until one does not refuse. Raises
        AllAccountsRefused when all refused, or when the budget since `started` ran out between tries."""
        unavailable: UpstreamUnavailable | None = None
        for adapter in self.adapters(job.family):
            if unavailable is not None and self.clock() - started > FAILOVER_BUDGET_S:
                # A slow refusal used up the time a caller (api: 29 s, a lease) can give another try; the job
                # stays accepted and the next check starts again, rather than be cut off mid-request.
                break
            try:
                return attempt(adapter)
            except UpstreamUnavailable as exc:
                unavailable = exc
            except UpstreamError as exc:
                exc.account = adapter.account.name
                raise
        raise AllAccountsRefused(unavailable)

    def leased(self, job: Job, now: float, lease_s: float | None = None) -> Job:
        """The job with a submit lease taken: written right before the request, so "leased but unanswered" means
        the upstream may have the task, and nobody submits it again."""
        return job.with_changes(
            submit_started_at=now,
            submit_attempts=job.submit_attempts + 1,
            next_check_at=now + (self.submit_lease_s if lease_s is None else lease_s),
        )

    def references(self, job: Job, given: Prepared | None = None) -> Prepared | Job:
        """The references to send (from the caller or S3), or the job as it ends when they cannot be had:
        rescheduled after a storage hiccup (nothing went upstream), failed when they are gone for good."""
        if given is not None or not job.references:
            return list(given or ())
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.inputs.load(job)
        except ReferenceMissing:
            return self.lifecycle.transition(
                job,
                "failed",
                error_code="reference_missing",
                error_message="A reference input of this job is no longer stored, so it was never sent "
                "upstream. Create the video again.",
            )
        except (BotoCoreError, ClientError):
            return self.release(job, self.poll_interval(job))

    def release(self, job: Job, delay_s: float) -> Job:
        """Gives the lease back (nothing went upstream) and looks at the job again after `delay_s`."""
        return self.lifecycle.save(job, job.with_changes(submit_started_at=None, next_check_at=self.clock() + delay_s))

    def refused(self, job: Job, refused: AllAccountsRefused) -> Job:
        """Every account refused before it could have billed anything: the lease is given back and the next try
        waits (backing off, never sooner than a poll interval or the Retry-After), or the job gives up once its
        submit budget is spent."""
        return self.retries.failed(
            job, "submit", refused.error(), at_least_s=self.poll_interval(job), submit_started_at=None
        )

    def submit(self, job: Job, references: Prepared | None = None) -> Job:
        """Sends a leased job of a polling dialect upstream and records what came of it."""
        loaded = self.references(job, references)
        if isinstance(loaded, Job):
            return loaded
        # Counted from the lease, so the time spent reading the references is inside the budget the lease covers.
        started = job.submit_started_at if job.submit_started_at is not None else self.clock()
        try:
            adapter, result = self.with_failover(job, lambda a: (a, a.submit(job, loaded)), started=started)
        except AllAccountsRefused as refused:
            return self.refused(job, refused)
        except UpstreamAmbiguous as exc:
            return self.lifecycle.transition(
                job,
                "failed",
                upstream_account=exc.account,
                error_code="upstream_submit_unknown",
                error_message=f"{exc.message}; not resubmitted, since the upstream may have "
                "accepted (and billed) it. Create the video again if you want a new try.",
            )
        except UpstreamRejected as exc:
            return self.lifecycle.transition(job, "failed", error_code=exc.code, error_message=exc.message)
        return self.lifecycle.transition(
            recovered(job),
            "running" if result.state == "in_progress" else "submitted",
            upstream_task_id=result.task_id,
            upstream_account=adapter.account.name,
            submit_started_at=None,
            progress=result.progress,
            next_check_at=self.clock() + self.poll_interval(job),
        )
