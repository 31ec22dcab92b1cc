"""The use cases' own rules, on in-memory fakes (tests/unit/fakes.py): no moto, no HTTP, no threads.

Given a job in some state and an upstream that answers in some way, when a use case runs, then the job moves as
the lifecycle says, exactly one event goes out per change a client can see, and the upstream is asked exactly
what it must be asked.
"""

from __future__ import annotations

import random
import types
from typing import Any

import pytest
from vidrelay_core.config import Settings
from vidrelay_core.contract import parse_create
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
from vidrelay_core.retries import Retries, RetryPolicy
from vidrelay_core.store.counters import rate_window
from vidrelay_core.store.tenants import TenantLimits
from vidrelay_core.submission import FAILOVER_BUDGET_S, Submitter
from vidrelay_core.subscriptions import Subscriptions
from vidrelay_core.upstream.base import PollResult, SubmitResult

from .fakes import (
    Clock,
    FakeAdapter,
    FakeCounters,
    FakeEndpointInterests,
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

    def __init__(
        self,
        *adapters: FakeAdapter,
        settings: Settings = SETTINGS,
        endpoints: list[tuple[str, ...]] | None = None,
    ) -> None:
        """`endpoints`: the event types of the tenant's endpoints, for a lifecycle that publishes only the
        progress events someone wants; without, every event is taken as wanted."""
        self.settings = settings
        self.endpoints = FakeEndpointInterests(endpoints or [])
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
            subscriptions=Subscriptions(self.endpoints) if endpoints is not None else None,
            progress_events=settings.progress_events,
            clock=self.clock,
        )
        policy = RetryPolicy(
            base_s=settings.retry_base_s,
            cap_s=settings.retry_cap_s,
            budget_s={"submit": settings.submit_retry_budget_s, "poll": settings.poll_retry_budget_s},
            rng=random.Random(7),
        )
        self.retries = Retries(self.lifecycle, policy, clock=self.clock)
        self.submitter = Submitter(
            self.lifecycle,
            FakeInputs(),  # type: ignore[arg-type]
            lambda family: self.adapters,  # type: ignore[arg-type,return-value]
            retries=self.retries,
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
            retries=self.retries,
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


def _to_completion(world: World, **fields: Any) -> Job:
    job = world.new_video(**fields)
    assert world.check_when_due(job) == "progress"
    assert world.check_when_due(job) == "downloading"
    current = world.job(job)
    world.lifecycle.transition(current, "completed", progress=100)
    return world.job(job)


PROGRESS_THEN_DONE = [
    PollResult(state="in_progress", progress=40, raw_status="in_progress"),
    PollResult(state="completed", progress=100, raw_status="completed"),
]


def test_progress_nobody_subscribed_to_is_not_published_and_the_rest_says_no_webhook_wants_it() -> None:
    # Given a tenant without endpoints and a job without webhook_url
    world = World(FakeAdapter("primary", polls=PROGRESS_THEN_DONE), endpoints=[])

    job = _to_completion(world)

    # Then its progress is stored but never announced, and the state changes go out marked for no webhook
    assert job.progress == 100 and world.publisher.types() == ["video.queued", "video.completed"]
    assert world.publisher.webhooks == [False, False]


def test_an_endpoint_that_wants_only_terminal_events_gets_no_progress_events() -> None:
    world = World(FakeAdapter("primary", polls=PROGRESS_THEN_DONE), endpoints=[("video.completed", "video.failed")])

    _to_completion(world)

    assert world.publisher.types() == ["video.queued", "video.completed"]
    assert world.publisher.webhooks == [False, True]


@pytest.mark.parametrize(
    ("fields", "endpoints"),
    [
        ({"webhook_url": "https://93.184.215.14/hook"}, []),  # every event, the job's own target
        ({"webhook_url": "https://93.184.215.14/hook", "webhook_events": ["video.in_progress"]}, []),
        ({}, [()]),  # an endpoint with no event_types takes every event
        ({}, [("video.in_progress",)]),
    ],
    ids=["job-webhook", "job-webhook-progress", "endpoint-all", "endpoint-progress"],
)
def test_progress_a_target_wants_is_published(fields: dict[str, Any], endpoints: list[tuple[str, ...]]) -> None:
    world = World(FakeAdapter("primary", polls=PROGRESS_THEN_DONE), endpoints=endpoints)

    _to_completion(world, **fields)

    assert world.publisher.types() == ["video.queued", "video.in_progress", "video.in_progress", "video.completed"]


def test_every_progress_event_is_published_when_configured_always() -> None:
    settings = SETTINGS.model_copy(update={"progress_events": "always"})
    world = World(FakeAdapter("primary", polls=PROGRESS_THEN_DONE), settings=settings, endpoints=[])

    _to_completion(world)

    assert world.publisher.types() == ["video.queued", "video.in_progress", "video.in_progress", "video.completed"]
    assert world.publisher.webhooks == [False] * 4


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


# -- retrying a failing upstream, visibly -------------------------------------------------------------------


def test_a_refused_submit_is_shown_on_the_video_and_retried_with_growing_waits() -> None:
    from vidrelay_core.contract import Video

    world = World(FakeAdapter("only", submits=[refused(503)] * 7))
    job = world.new_video()
    waits = []
    for _ in range(6):
        current = world.job(job)
        assert current.next_check_at is not None
        waits.append(current.next_check_at - world.clock())
        world.check_when_due(job)

    shown = Video.from_job(world.job(job), retention_days=30).model_dump(mode="json")["retry"]
    assert shown["stage"] == "submit" and shown["attempts"] == 7
    assert shown["last_error"]["code"] == "upstream_unavailable"
    # Never sooner than a poll interval; then doubling (equal jitter keeps each wait at least the last one's half).
    assert waits == sorted(waits) and waits[0] >= 15 and waits[-1] >= 4 * waits[0]


def test_a_submit_that_keeps_failing_gives_up_after_its_budget_with_its_terminal_event() -> None:
    world = World(FakeAdapter("only", submits=[refused(503)] * 1000))
    job = world.new_video()
    checks = 0
    while world.job(job).state == "accepted":
        world.check_when_due(job)
        checks += 1
        assert checks < 200

    ended = world.job(job)
    assert (ended.state, ended.error_code) == ("failed", "upstream_unavailable")
    assert "30 minutes" in (ended.error_message or "") and "upstream answered 503" in (ended.error_message or "")
    assert world.clock() - ended.created_at >= SETTINGS.submit_retry_budget_s
    assert world.publisher.types()[-1] == "video.failed"
    assert checks < 40  # backed off: not one try per poll interval for half an hour


def test_polls_that_keep_failing_give_up_and_one_that_succeeds_clears_the_retry() -> None:
    world = World(FakeAdapter("primary", polls=[refused(500), PollResult("in_progress", 10, "in_progress")]))
    job = world.new_video()
    assert world.check_when_due(job) == "poll_retry"
    assert world.job(job).retry_stage == "poll"
    assert world.check_when_due(job) == "progress"
    assert world.job(job).retry_stage is None

    world.adapters[0].polls = [refused(500)] * 1000
    outcome = ""
    while outcome != "poll_failed":
        outcome = world.check_when_due(job)
    assert world.job(job).error_code == "upstream_unreachable"


# -- the poller's schedule ------------------------------------------------------------------------------------


def test_an_idle_poller_stops_after_one_look_instead_of_sweeping_its_budget() -> None:
    world = World()
    looks: list[float] = []
    due_keys = world.jobs.due_keys

    def counted(shard: int, until: float, **kwargs: Any) -> Any:
        looks.append(until)
        return due_keys(shard, until, **kwargs)

    world.jobs.due_keys = counted  # type: ignore[method-assign]

    stats = world.poller.sweep(until=world.clock() + 50, tick_s=1.0)

    assert stats.sweeps == 1 and looks == [world.clock() + 50] * SETTINGS.inflight_shards


def test_a_poller_whose_jobs_fall_due_after_its_budget_stops_too() -> None:
    world = World()
    job = world.new_video()
    assert world.job(job).next_check_at is not None

    stats = world.poller.sweep(until=world.clock() + 5, tick_s=1.0)  # the job's next poll is 15 s away

    assert stats.sweeps == 1 and stats.checked == 0


def test_a_poller_sleeps_to_the_next_due_job_within_its_budget_and_checks_it_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World()
    job = world.new_video()
    due_at = world.job(job).next_check_at or 0.0
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        world.clock.advance(seconds)

    import vidrelay_core.polling as polling

    monkeypatch.setattr(polling, "time", types.SimpleNamespace(sleep=sleep))
    started = world.clock()

    stats = world.poller.sweep(until=started + 20, tick_s=1.0)

    assert stats.checked == 1 and world.adapters[0].polled == [job.id]
    assert slept[0] == pytest.approx(due_at - started)  # straight to the due job, no tick-by-tick sweeping


def test_unchanged_polls_inside_one_sweep_write_nothing_until_the_last_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a job the upstream keeps reporting at 40 %, and a poller with a 50 s budget
    same = PollResult(state="in_progress", progress=40, raw_status="in_progress")
    world = World(FakeAdapter("primary", polls=[same] * 10))
    job = world.new_video()
    world.check_when_due(job)  # now running at 40 %, due again a poll interval later
    writes: list[float] = []
    reschedule = world.jobs.reschedule

    def counted(job: Job, next_check_at: float) -> Job:
        writes.append(next_check_at)
        return reschedule(job, next_check_at)

    world.jobs.reschedule = counted  # type: ignore[method-assign]
    import vidrelay_core.polling as polling

    monkeypatch.setattr(polling, "time", types.SimpleNamespace(sleep=world.clock.advance))
    started = world.clock()
    interval = world.poller.interval(world.job(job))
    version = world.job(job).version

    # When it sweeps its budget
    stats = world.poller.sweep(until=started + 50, tick_s=1.0)

    # Then it checked the job at its interval, and wrote only the check that falls after its budget
    polls = len(world.adapters[0].polled) - 1
    assert stats.by_outcome == {"unchanged": polls} and polls == int(50 // interval) == 3
    assert len(writes) == 1 and writes[0] >= started + 50
    assert world.job(job).version == version  # no transition either
    # And a sweep in a new container (which remembers nothing) finds it due where the store says
    assert world.job(job).next_check_at == writes[0]
