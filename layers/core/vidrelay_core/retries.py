"""Retrying a failing upstream, visibly: exponential backoff with jitter (never sooner than the upstream's
Retry-After), the attempt count and last error kept on the job (the Video object's `retry`), and a budget after
which the job gives up with a clear code instead of knocking forever.

Each stage counts its own run of failures (`submit`, `poll`, `download`); any success clears it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .errors import UpstreamError
from .jobs import Job
from .lifecycle import Lifecycle

Stage = Literal["submit", "poll", "download"]


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float
    cap_s: float
    # How long a run of failures of one stage may last before the job fails (downloads count attempts instead:
    # each one can take minutes).
    budget_s: dict[str, float]
    rng: random.Random

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Equal jitter: half the exponential delay fixed, half random, so a burst of failures spreads out."""
        delay = min(self.cap_s, self.base_s * 2 ** max(0, attempt - 1))
        jittered = delay / 2 + self.rng.uniform(0, delay / 2)
        return max(jittered, min(retry_after_s or 0.0, self.cap_s * 4))

    def exhausted(self, job: Job, stage: Stage, now: float) -> bool:
        since = job.retrying_since if job.retry_stage == stage and job.retrying_since is not None else now
        return now - since >= self.budget_s.get(stage, float("inf"))


def failed_again(job: Job, stage: Stage, *, code: str, message: str, now: float) -> Job:
    """The job with one more failure of `stage` recorded (a new run when another stage was failing)."""
    same = job.retry_stage == stage
    return job.with_changes(
        retry_stage=stage,
        retry_attempts=(job.retry_attempts if same else 0) + 1,
        retrying_since=job.retrying_since if same and job.retrying_since is not None else now,
        last_error_code=code,
        last_error_message=message,
    )


def recovered(job: Job) -> Job:
    """The job with its run of failures forgotten (the stage it was retrying just succeeded)."""
    if job.retry_stage is None:
        return job
    return job.with_changes(
        retry_stage=None, retry_attempts=0, retrying_since=None, last_error_code=None, last_error_message=None
    )


GIVE_UP: dict[str, tuple[str, str]] = {
    "submit": ("upstream_unavailable", "No upstream account took the video in {budget} of tries; it was never sent"),
    "poll": ("upstream_unreachable", "The upstream could not be asked about the video for {budget}"),
}


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} s"


class Retries:
    """Records a failed try of a stage on the job and schedules the next one, or ends the job when its budget is
    spent. Every write is the job's own conditional write (the lifecycle), so a stale caller loses."""

    def __init__(self, lifecycle: Lifecycle, policy: RetryPolicy, *, clock: Callable[[], float]) -> None:
        self.lifecycle = lifecycle
        self.policy = policy
        self.clock = clock

    def failed(
        self,
        job: Job,
        stage: Stage,
        error: UpstreamError | Exception,
        *,
        at_least_s: float = 0.0,
        **changes: Any,
    ) -> Job:
        now = self.clock()
        code = getattr(error, "code", None) or "upstream_error"
        message = getattr(error, "message", None) or str(error)
        if self.policy.exhausted(job, stage, now) and stage in GIVE_UP:
            give_up_code, text = GIVE_UP[stage]
            budget = _minutes(self.policy.budget_s[stage])
            return self.lifecycle.transition(
                job,
                "failed",
                error_code=give_up_code,
                error_message=f"{text.format(budget=budget)} (last error: {message}).",
                **changes,
            )
        after = failed_again(job, stage, code=code, message=message, now=now)
        retry_after = getattr(error, "retry_after_s", None)
        delay = max(at_least_s, self.policy.delay_s(after.retry_attempts, retry_after))
        return self.lifecycle.save(job, after.with_changes(next_check_at=now + delay, **changes))
