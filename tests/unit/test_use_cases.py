"""The use cases' own rules, on in-memory fakes (tests/unit/fakes.py): no moto, no HTTP, no threads.

Given a job in some state and an upstream that answers in some way, when a use case runs, then the job moves as
the lifecycle says, exactly one event goes out per change a client can see, and the upstream is asked exactly
what it must be asked.
"""

from __future__ import annotations

from typing import Any

import pytest
from vidrelay_core.config import Settings
from vidrelay_core.creation import CreateVideo
from vidrelay_core.errors import (
    Conflict,
    PaymentRequired,
    RateLimited,
    StaleJob,
    UpstreamAmbiguous,
    UpstreamRejected,
    UpstreamResultGone,
)
from vidrelay_core.jobs import Job
from vidrelay_core.lifecycle import PROGRESS_EVENT_EVERY_S, Lifecycle
from vidrelay_core.polling import Poller, SweepStats, poll_interval
from vidrelay_core.queries import VideoQueries
from vidrelay_core.requests import parse_create
from vidrelay_core.store.counters import rate_window
from vidrelay_core.store.tenants import TenantLimits
from vidrelay_core.submission import FAILOVER_BUDGET_S, Submitter
from vidrelay_core.upstream.base import PollResult, SubmitResult

from .fakes import (
    Clock,
    FakeAdapter,
    FakeCounters,
    FakeInputs,
    FakeJobStore,
    FakePublisher,
    FakeQueues,
    FakeTenants,
    refused,
)

SETTINGS = Settings(jobs_table="t", results_bucket="b", events_topic_arn="arn:topic", inflight_shards=1)


class World:
    """The use cases wired to fakes, as wiring.Components wires them to AWS."""

    def __init__(self, *adapters: FakeAdapter, settings: Settings = SETTINGS) -> None:
        self.settings = settings
        self.clock = Clock()
        self.jobs = FakeJobStore(self.clock)
        self.publisher = FakePublisher()
        self.queues = FakeQueues()
        self.tenants = FakeTenants()
        self.counters = FakeCounters()
        self.adapters = list(adapters) or [FakeAdapter("primary")]
        self.lifecycle = Lifecycle(
            self.jobs,  # type: ignore[arg-type]
            self.publisher,  # type: ignore[arg-type]
            retention_days=settings.retention_days,
            outbox_grace_s=settings.outbox_grace_s,
            clock=self.clock,
        )
        self.submitter = Submitter(
            self.lifecycle,
            FakeInputs(),  # type: ignore[arg-type]
            lambda family: self.adapters,  # type: ignore[arg-type,return-value]
            submit_lease_s=settings.submit_lease_s,
            poll_interval=poll_interval(settings),
            clock=self.clock,
        )
        self.poller = Poller(
            settings,
            jobs=self.jobs,  # type: ignore[arg-type]
            lifecycle=self.lifecycle,
            submitter=self.submitter,
            queues=self.queues,  # type: ignore[arg-type]
            adapters=lambda family: self.adapters,  # type: ignore[arg-type,return-value]
            clock=self.clock,
        )
        queries = VideoQueries(self.jobs, self.counters, s3=None, presign_ttl_s=60, clock=self.clock)  # type: ignore[arg-type]
        self.create = CreateVideo(
            settings,
            jobs=self.jobs,  # type: ignore[arg-type]
            tenants=self.tenants,  # type: ignore[arg-type]
            counters=self.counters,  # type: ignore[arg-type]
            lifecycle=self.lifecycle,
            inputs=FakeInputs(),  # type: ignore[arg-type]
            submitter=self.submitter,
            queues=self.queues,  # type: ignore[arg-type]
            queries=queries,
            clock=self.clock,
        )

    def new_video(self, **fields: Any) -> Job:
        return self.create.create("acme", parse_create({"prompt": "a lighthouse", **fields}))

    def job(self, job: Job) -> Job:
        found = self.jobs.get_job(job.id)
        assert found is not None
        return found

    def check_when_due(self, job: Job) -> str:
        current = self.job(job)
        assert current.next_check_at is not None
        self.clock.now = max(self.clock.now, current.next_check_at)
        return self.poller.check(current)


# -- creating ------------------------------------------------------------------------------------------------


def test_a_new_video_is_written_announced_and_submitted_in_the_request() -> None:
    world = World()

    job = world.new_video()

    assert job.state == "submitted" and job.upstream_task_id == f"task-{job.id}"
    assert world.publisher.types() == ["video.queued"]
    assert world.adapters[0].submitted == [job.id]


def test_a_replay_with_the_same_key_answers_the_first_job_and_submits_nothing_more() -> None:
    world = World()
    request = parse_create({"prompt": "a lighthouse"})
    first = world.create.create("acme", request, idempotency_key="order-7")

    again = world.create.create("acme", request, idempotency_key="order-7")

    assert again.id == first.id
    assert world.adapters[0].submitted == [first.id]


def test_the_same_key_with_another_body_is_a_conflict() -> None:
    world = World()
    world.create.create("acme", parse_create({"prompt": "a lighthouse"}), idempotency_key="order-7")

    with pytest.raises(Conflict) as caught:
        world.create.create("acme", parse_create({"prompt": "a harbour"}), idempotency_key="order-7")

    assert caught.value.param == "Idempotency-Key"


def test_a_full_minute_refuses_before_anything_is_written() -> None:
    world = World()
    world.tenants.limits_by_tenant["acme"] = TenantLimits(rate_per_minute=2)
    world.counters.used[("acme", rate_window(world.clock()))] = 2

    with pytest.raises(RateLimited) as caught:
        world.new_video()

    assert caught.value.retry_after_s >= 1
    assert world.jobs.items == {} and world.adapters[0].submitted == []


def test_a_budget_the_counter_refuses_is_a_402_naming_the_spend() -> None:
    world = World()
    world.tenants.limits_by_tenant["acme"] = TenantLimits(budget_usd=1.0)
    world.counters.spent[("acme", "2027-01")] = 0.9
    world.jobs.refuse = "spend"

    with pytest.raises(PaymentRequired) as caught:
        world.new_video()

    assert "$1.00" in caught.value.message and world.adapters[0].submitted == []


def test_a_create_whose_job_is_moved_meanwhile_answers_the_job_as_it_is_now() -> None:
    """The race of a slow submit: a poller (or a delete) moves the job between the api's lease and its write."""
    world = World()

    def poller_fails_it(job: Job) -> None:
        stored = world.jobs.items[job.id]
        world.jobs.items[job.id] = stored.with_changes(version=stored.version + 1, state="failed")

    world.jobs.before_save = poller_fails_it

    answered = world.new_video()

    assert answered.state == "failed"  # the job as stored, not a 500
    assert world.adapters[0].submitted == []


# -- submitting and failover ---------------------------------------------------------------------------------


def test_a_refused_account_fails_over_to_the_next_one() -> None:
    world = World(FakeAdapter("first", submits=[refused(503)]), FakeAdapter("second"))

    job = world.new_video()

    assert job.state == "submitted" and job.upstream_account == "second"
    assert [a.submitted for a in world.adapters] == [[job.id], [job.id]]


def test_an_ambiguous_submit_is_never_sent_to_another_account() -> None:
    ambiguous = UpstreamAmbiguous("no answer after the body was sent", code="upstream_submit_unknown")
    world = World(FakeAdapter("first", submits=[ambiguous]), FakeAdapter("second"))

    job = world.new_video()

    assert (job.state, job.error_code, job.upstream_account) == ("failed", "upstream_submit_unknown", "first")
    assert world.adapters[1].submitted == []
    assert world.publisher.types() == ["video.queued", "video.failed"]


def test_a_rejected_submit_fails_with_the_upstreams_words() -> None:
    rejected = UpstreamRejected("upstream refused the job: prompt blocked", code="upstream_rejected", status=400)
    world = World(FakeAdapter("first", submits=[rejected]))

    job = world.new_video()

    assert (job.state, job.error_message) == ("failed", "upstream refused the job: prompt blocked")


def test_failover_stops_when_a_slow_refusal_used_up_the_budget() -> None:
    slow = FakeAdapter("slow")
    world = World(slow, FakeAdapter("second"))

    def refuse_slowly(job: Job, references: Any = ()) -> SubmitResult:
        world.clock.advance(FAILOVER_BUDGET_S + 1)
        raise refused(503)

    slow.submit = refuse_slowly  # type: ignore[method-assign]

    job = world.new_video()

    assert job.state == "accepted" and job.submit_started_at is None  # left for the poller's next try
    assert world.adapters[1].submitted == []


def test_when_every_account_refuses_the_job_waits_at_least_the_retry_after() -> None:
    world = World(FakeAdapter("only", submits=[refused(429, retry_after_s=120)]))

    job = world.new_video()

    assert job.state == "accepted" and job.next_check_at is not None
    assert job.next_check_at - world.clock() >= 120


# -- polling -------------------------------------------------------------------------------------------------


def test_progress_moves_the_job_and_completion_hands_it_to_the_downloader() -> None:
    adapter = FakeAdapter(
        "primary",
        polls=[
            PollResult(state="in_progress", progress=40, raw_status="in_progress"),
            PollResult(state="completed", progress=100, raw_status="completed"),
        ],
    )
    world = World(adapter)
    job = world.new_video()

    assert world.check_when_due(job) == "progress"
    assert world.check_when_due(job) == "downloading"

    assert world.job(job).state == "downloading" and world.queues.downloads == [job.id]
    # 40 % and then 99 % (downloading), a poll interval apart: both are progress a client sees.
    assert world.publisher.types() == ["video.queued", "video.in_progress", "video.in_progress"]


def test_an_unchanged_poll_reschedules_without_an_event() -> None:
    same = PollResult(state="in_progress", progress=40, raw_status="in_progress")
    world = World(FakeAdapter("primary", polls=[same, same]))
    job = world.new_video()
    world.check_when_due(job)
    version = world.job(job).version

    assert world.check_when_due(job) == "unchanged"

    assert world.job(job).version == version
    assert world.publisher.types() == ["video.queued", "video.in_progress"]


def test_a_task_the_upstream_no_longer_has_is_expired() -> None:
    gone = UpstreamResultGone("the upstream no longer has this task", code="upstream_expired", status=404)
    world = World(FakeAdapter("primary", polls=[gone]))
    job = world.new_video()

    assert world.check_when_due(job) == "expired"
    assert world.job(job).error_code == "upstream_expired"


def test_an_unreachable_upstream_is_asked_again_later_not_failed() -> None:
    world = World(FakeAdapter("primary", polls=[refused(502)]))
    job = world.new_video()

    assert world.check_when_due(job) == "poll_retry"
    assert world.job(job).state == "submitted"


def test_a_submit_whose_worker_died_is_failed_not_sent_again() -> None:
    world = World()
    job = world.new_video()
    # The api leased the job and died before the upstream's answer was recorded.
    leased = world.jobs.save(
        world.job(job), world.submitter.leased(world.job(job), world.clock()).with_changes(state="accepted")
    )
    world.clock.advance(SETTINGS.submit_lease_s + 1)

    assert world.poller.check(leased) == "submit_unknown"
    assert world.job(job).error_code == "upstream_submit_unknown"
    assert world.adapters[0].submitted == [job.id]  # only the first submit


def test_a_job_the_api_never_submitted_is_submitted_by_the_poller_after_the_grace() -> None:
    world = World(FakeAdapter("primary", submits=[refused(503), SubmitResult(task_id="t-2", state="queued")]))
    job = world.new_video()
    assert world.job(job).state == "accepted"

    assert world.check_when_due(job) == "submitted"
    assert world.job(job).upstream_task_id == "t-2"


def test_a_sweep_reports_the_age_of_the_oldest_job_still_in_flight() -> None:
    world = World()
    finished = world.new_video()
    # Finished, but its event is still unsent: it stays in the in-flight index, yet is not in flight.
    world.publisher.fail_next = True
    with pytest.raises(ConnectionError):
        world.lifecycle.transition(world.job(finished), "failed", error_code="upstream_failed", error_message="x")
    world.clock.advance(600)
    oldest = world.new_video()
    world.clock.advance(300)
    world.new_video()
    world.clock.advance(120)

    stats = world.poller.sweep_once()

    assert stats.checked == 3
    assert stats.oldest_inflight_age_s == world.clock() - oldest.created_at == 420


def test_a_sweep_with_nothing_in_flight_reports_no_age() -> None:
    world = World()

    stats = world.poller.sweep_once()

    assert (stats.checked, stats.oldest_inflight_age_s) == (0, None)


def test_sweeps_added_up_keep_the_oldest_age_any_of_them_saw() -> None:
    total = SweepStats(sweeps=0)
    for age in (None, 90.0, 30.0, None):
        total.add(SweepStats(sweeps=1, oldest_inflight_age_s=age))

    assert (total.sweeps, total.oldest_inflight_age_s) == (4, 90.0)


# -- the lifecycle ------------------------------------------------------------------------------------------


def test_progress_events_are_throttled_but_every_state_change_is_announced() -> None:
    world = World()
    job = world.new_video()
    current = world.job(job)
    for progress in (10, 20, 30):
        current = world.lifecycle.transition(current, "running", progress=progress)
    world.clock.advance(PROGRESS_EVENT_EVERY_S)
    current = world.lifecycle.transition(current, "running", progress=40)
    world.lifecycle.transition(current, "failed", error_code="upstream_failed", error_message="x")

    assert world.publisher.types() == ["video.queued", "video.in_progress", "video.in_progress", "video.failed"]


def test_an_event_that_could_not_be_sent_goes_out_with_the_same_id_on_the_next_check() -> None:
    world = World()
    job = world.new_video()
    world.publisher.fail_next = True
    with pytest.raises(ConnectionError):
        world.lifecycle.transition(world.job(job), "failed", error_code="upstream_failed", error_message="x")
    stored = world.job(job)
    assert stored.state == "failed" and not stored.event_published

    assert world.poller.check(stored) == "republished"
    assert world.publisher.events[-1]["id"] == stored.last_event_id


def test_a_stale_writer_loses() -> None:
    world = World()
    job = world.new_video()
    old = world.job(job)
    world.lifecycle.transition(old, "running", progress=10)

    with pytest.raises(StaleJob):
        world.lifecycle.transition(old, "failed", error_code="x", error_message="x")
