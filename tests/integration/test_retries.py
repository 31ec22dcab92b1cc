"""A failing upstream is retried with backoff, shown on the Video object while it is, and given up on after a
budget, with the job's terminal event. Against moto and the simulator; the harness's clock makes half an hour of
backing off take a second."""

from __future__ import annotations

import math

from vidrelay_core.config import Settings
from vidrelay_core.contract import Video

from .conftest import Harness

SUBMITS = "http.POST /v1/videos"
POLLS = "http.GET /v1/videos/{id}"
CONTENT = "http.GET /v1/videos/{id}/content"


def most_tries(settings: Settings, budget_s: float) -> int:
    """What backing off allows in `budget_s`: the doubling waits up to the cap, then one try per half a cap at
    worst (equal jitter), plus the first. One try per poll interval would be hundreds."""
    return (
        int(budget_s / (settings.retry_cap_s / 2))
        + 2
        + math.ceil(math.log2(settings.retry_cap_s / settings.retry_base_s))
    )


def events_of(h: Harness, case: str) -> list[str]:
    return [d.event["type"] for d in h.stack.receiver.for_case(case)]


def test_a_submit_that_keeps_failing_backs_off_shows_its_error_and_fails_after_the_budget(harness: Harness) -> None:
    # Given an upstream that answers every submit of this job with a 500
    h = harness
    tenant = h.new_tenant()
    p = h.process()
    case = "retry-submit"
    job = p.parts.create.create(tenant.name, h.request(case, prompt="a quay [sim:submit_500]"))

    # Then the create answers the job, queued, with the error it is retrying
    shown = Video.from_job(job, retention_days=30).model_dump(mode="json")
    assert shown["status"] == "queued" and shown["retry"]["stage"] == "submit"
    assert shown["retry"]["last_error"]["code"] == "upstream_unavailable" and shown["retry"]["attempts"] == 1

    # When the poller keeps trying for longer than the submit budget
    h.converge(p, tenant, timeout_s=60)

    # Then the job failed with a clear code, its event went out, and it was tried a bounded number of times
    (ended,) = h.jobs(tenant)
    budget = p.parts.settings.submit_retry_budget_s
    assert (ended.state, ended.error_code) == ("failed", "upstream_unavailable")
    assert ended.updated_at - ended.created_at >= budget
    tries = p.log.labels(SUBMITS)
    assert 5 <= tries <= most_tries(p.parts.settings, budget), tries
    assert events_of(h, case) == ["video.queued", "video.failed"]
    assert Video.from_job(ended, retention_days=30).model_dump(mode="json")["retry"] is None


def test_polls_that_keep_failing_end_the_job_after_the_poll_budget(harness: Harness) -> None:
    h = harness
    tenant = h.new_tenant()
    p = h.process()
    case = "retry-poll"
    p.parts.create.create(tenant.name, h.request(case, prompt="a quay [sim:poll_500=100000]"))

    h.converge(p, tenant, timeout_s=60)

    (ended,) = h.jobs(tenant)
    assert (ended.state, ended.error_code) == ("failed", "upstream_unreachable")
    assert "upstream" in (ended.error_message or "") and "poll answered 500" in (ended.error_message or "")
    assert p.log.labels(POLLS) <= most_tries(p.parts.settings, p.parts.settings.poll_retry_budget_s) + 1
    assert events_of(h, case)[-1] == "video.failed"


def test_a_download_that_keeps_failing_is_retried_with_backoff_then_failed(harness: Harness) -> None:
    h = harness
    tenant = h.new_tenant()
    p = h.process()
    case = "retry-content"
    p.parts.create.create(tenant.name, h.request(case, prompt="a quay [sim:content_500=100000]"))
    h.wait_sim(case, "completed")

    h.converge(p, tenant, timeout_s=60)

    (ended,) = h.jobs(tenant)
    attempts = p.parts.settings.max_download_attempts
    assert (ended.state, ended.error_code) == ("failed", "download_failed")
    assert f"after {attempts} attempts" in (ended.error_message or "") and "500" in (ended.error_message or "")
    # Each attempt tries three times in the downloader itself (the first try and two quick retries).
    assert p.log.labels(CONTENT) == attempts * 3
    assert h.objects(tenant) == [] and h.open_uploads(tenant) == []
    assert events_of(h, case)[-1] == "video.failed"


def test_a_download_that_fails_once_completes_and_clears_its_retry(harness: Harness) -> None:
    h = harness
    tenant = h.new_tenant()
    p = h.process()
    case = "retry-content-once"
    p.parts.create.create(tenant.name, h.request(case, prompt="a quay [sim:content_500=3]"))
    h.wait_sim(case, "completed")

    h.converge(p, tenant, timeout_s=60)

    (ended,) = h.jobs(tenant)
    assert ended.state == "completed" and ended.retry_stage is None
    assert events_of(h, case)[-1] == "video.completed"
