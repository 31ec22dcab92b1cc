"""The chaos run's plan and receiver: what it sends and how its receiver fails, without a stack."""

from __future__ import annotations

import json
import time
from collections import Counter

from vidrelay_core.catalog import MODELS
from vidrelay_core.webhooks import new_secret, sign

from vidrelay.chaos.plan import PERSISTENT, ModelInfo, plan, request_for
from vidrelay.chaos.receiver import FlakyReceiver

CATALOG = [ModelInfo(spec.id, spec.family) for spec in MODELS.values()]


def test_every_model_of_the_catalog_has_a_request() -> None:
    for job in plan("t", CATALOG, 2 * len(CATALOG)):
        kwargs = request_for(job, "http://127.0.0.1:9/hooks", "t")
        fields = kwargs.get("json") or kwargs.get("data")
        assert fields["model"] == job.model.id and job.marker in fields["prompt"]
        assert fields["webhook_url"] == "http://127.0.0.1:9/hooks"


def test_a_fifth_of_the_jobs_meet_a_fault_and_every_persistent_fault_is_planned() -> None:
    jobs = plan("t", CATALOG, 300)
    faulted = [job for job in jobs if job.fault.name != "none"]
    assert len(faulted) == 60
    assert all(job.model.family in job.fault.dialects for job in faulted)
    assert {job.fault.name for job in faulted} >= {fault.name for fault in PERSISTENT}
    assert Counter(job.expected for job in jobs)["failed"] == 15
    assert len({job.marker for job in jobs}) == 300


def test_the_receiver_fails_about_half_but_never_more_than_four_times_in_a_row() -> None:
    secret = new_secret()
    receiver = FlakyReceiver(secret, seed=3)
    for n in range(200):
        body = json.dumps({"id": f"evt_{n}", "type": "video.completed", "data": {"id": f"video_{n}"}}).encode()
        now = int(time.time())
        headers = {
            "webhook-id": f"evt_{n}",
            "webhook-timestamp": str(now),
            "webhook-signature": sign([secret], f"evt_{n}", now, body.decode()),
        }
        while receiver.handle(body, headers) != 200:
            pass
    answers = [r.answer for requests in receiver.snapshot().values() for r in requests]
    assert max(len(requests) for requests in receiver.snapshot().values()) <= 5
    failures = sum(1 for a in answers if a != 200)
    assert 0.35 < failures / len(answers) < 0.6
    assert None in answers and 503 in answers and receiver.bad_signatures == 0
