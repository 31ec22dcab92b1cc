"""A download ends within its invocation: past its deadline it neither starts another try nor reads on, and the
job stays `downloading` for the next message (SQS redelivery, or the poller once the download lease ran out).
That is what keeps the download lease, longer than the downloader's timeout, longer than any download."""

from __future__ import annotations

import time

from .conftest import Harness

CONTENT = "http.GET /v1/videos/{id}/content"


def test_no_retry_starts_when_the_invocation_has_no_time_left_for_it(harness: Harness) -> None:
    # Given a finished video whose content answers 500 once (a retry would succeed a second later)
    h = harness
    tenant = h.new_tenant()
    p = h.process()
    job = p.parts.create.create(tenant.name, h.request("deadline-retry", prompt="a quay [sim:content_500=1]"))
    h.wait_sim("deadline-retry", "completed")
    h.clock.advance(1.0)
    p.parts.poller.sweep_once()
    assert p.parts.jobs.get_job(job.id).state == "downloading"  # type: ignore[union-attr]

    # When the downloader has less time left than the retry delay
    started = p.log.labels(CONTENT)
    before = time.monotonic()
    outcome = p.parts.downloader.download(job.id, deadline=time.monotonic() + 0.5)

    # Then it gives up at once after one try, and the job waits, showing why, for the next message
    assert outcome == "retry"
    assert p.log.labels(CONTENT) - started == 1
    assert time.monotonic() - before < 0.5
    waiting = p.parts.jobs.get_job(job.id)
    assert waiting is not None and waiting.state == "downloading" and waiting.retry_stage == "download"
    # And the next invocation, with time, completes it
    assert p.parts.downloader.download(job.id, deadline=time.monotonic() + 600) == "completed"
    assert p.log.labels(CONTENT) - started == 2
    h.converge(p, tenant)
