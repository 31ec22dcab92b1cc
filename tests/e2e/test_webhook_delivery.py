"""Webhook delivery that loses nothing, on a local stack whose retry schedule is shrunk 10 000 times.

The schedule's shape is what is under test (ten attempts, the order of the delays, Retry-After, the dead-letter
queue); its absolute delays are scaled so a three-day schedule runs in about half a minute.
"""

from __future__ import annotations

import itertools
import json
import queue
import time
from typing import Any

import httpx
import openai
import pytest
import standardwebhooks
from vidrelay_core.contract import DeliveryList, WebhookEndpointWithSecret

from tests.e2e.conftest import LocalStackProcess, wait_for_status
from vidrelay.receiver import Received, Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SORA = {"model": "sora-2", "prompt": "a kite over the dunes", "seconds": "4", "size": "1280x720"}


def completed_only(stack: LocalStackProcess, url: str) -> dict[str, Any]:
    """A job whose only webhook is its video.completed event."""
    with stack.http() as api:
        body = {**SORA, "webhook_url": url, "webhook_events": ["video.completed"]}
        return dict(api.post("/videos", json=body).raise_for_status().json())


def take(receiver: Receiver, count: int, timeout_s: float) -> list[Received]:
    got: list[Received] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        try:
            got.append(receiver.events.get(timeout=0.2))
        except queue.Empty:
            continue
    return got


def nothing_more(receiver: Receiver, wait_s: float) -> list[Received]:
    return take(receiver, 1, wait_s)


def until_completed(receiver: Receiver, video_id: str, timeout_s: float = 30) -> list[Received]:
    """Everything the receiver got for this video, up to and including its video.completed event."""
    got: list[Received] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for item in take(receiver, 1, 0.5):
            if item.event["data"]["id"] == video_id:
                got.append(item)
                if item.event["type"] == "video.completed":
                    return got
    raise AssertionError(f"no video.completed for {video_id}: {[r.event['type'] for r in got]}")


def deliveries(stack: LocalStackProcess, video_id: str) -> list[dict[str, Any]]:
    with stack.http() as api:
        listed = api.get(f"/videos/{video_id}/deliveries").raise_for_status().json()
    DeliveryList.model_validate(listed)
    return list(listed["data"])


def wait_for_delivery(stack: LocalStackProcess, video_id: str, status: str, timeout_s: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = deliveries(stack, video_id)
        if seen and seen[0]["status"] == status:
            return seen[0]
        time.sleep(0.3)
    raise AssertionError(f"no delivery of {video_id} reached {status}: {seen}")


def test_two_failures_then_success_is_three_attempts_of_one_message(scaled_stack: LocalStackProcess) -> None:
    secret = str(scaled_stack.info["webhook_secret"])
    receiver = Receiver(statuses=[500, 500]).start()  # then 200
    try:
        video = completed_only(scaled_stack, receiver.url)
        got = take(receiver, 3, 60)
        assert len(got) == 3, [r.headers.get("webhook-id") for r in got]
        assert nothing_more(receiver, 4.0) == []  # nothing after the 200
    finally:
        receiver.stop()
    assert {r.headers["webhook-id"] for r in got} == {got[0].event["id"]}
    assert [r.attempt for r in got] == [1, 2, 3]
    sdk = openai.OpenAI(base_url=scaled_stack.api_url, api_key=scaled_stack.api_key, webhook_secret=secret)
    for item in got:
        standardwebhooks.Webhook(secret).verify(item.body, item.headers)
        sdk.webhooks.verify_signature(item.body, item.headers)
        assert item.event["type"] == "video.completed" and item.event["data"]["id"] == video["id"]
    delivery = wait_for_delivery(scaled_stack, video["id"], "succeeded")
    assert [a["status"] for a in delivery["attempts"]] == [500, 500, 200]
    assert delivery["attempt_count"] == 3


def test_never_2xx_is_ten_attempts_then_dead_letter_then_one_redelivery(scaled_stack: LocalStackProcess) -> None:
    receiver = Receiver(default_status=503).start()
    try:
        video = completed_only(scaled_stack, receiver.url)
        got = take(receiver, 10, 90)
        assert len(got) == 10
        delivery = wait_for_delivery(scaled_stack, video["id"], "failed")
        assert nothing_more(receiver, 3.0) == []
        assert delivery["attempt_count"] == 10
        assert [a["attempt"] for a in delivery["attempts"]] == list(range(1, 11))
        times = [r.received_at for r in got]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps[-1] > gaps[0], gaps  # the schedule backs off: 24 h x 1e-4 is longer than 5 s x 1e-4

        dead = dead_letters(scaled_stack)
        assert any(d["delivery"]["id"] == delivery["id"] for d in dead), dead

        with scaled_stack.http() as api:
            again = api.post(f"/videos/{video['id']}/deliveries/{delivery['id']}/redeliver")
            assert again.status_code == 200, again.text
            assert again.json()["status"] == "pending"
        extra = take(receiver, 1, 30)
        assert len(extra) == 1 and extra[0].headers["webhook-id"] == got[0].headers["webhook-id"]
        final = wait_for_delivery(scaled_stack, video["id"], "failed")
        assert final["attempt_count"] == 11 and final["attempts"][-1]["manual"] is True
        assert nothing_more(receiver, 3.0) == []  # a redelivery is one attempt, not a new schedule
    finally:
        receiver.stop()


def dead_letters(stack: LocalStackProcess) -> list[dict[str, Any]]:
    sqs = stack.aws("sqs")
    url = next(u for u in sqs.list_queues()["QueueUrls"] if "WebhookDeadLetter" in u)
    found: list[dict[str, Any]] = []
    for _ in range(3):
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            found.append(json.loads(message["Body"]))
    return found


def test_retry_after_is_honoured(scaled_stack: LocalStackProcess) -> None:
    receiver = Receiver(statuses=[(503, {"Retry-After": "3"})]).start()
    try:
        completed_only(scaled_stack, receiver.url)
        got = take(receiver, 2, 30)
    finally:
        receiver.stop()
    assert len(got) == 2
    # Unscaled, the second attempt would follow the first by 5 s x 1e-4; the receiver asked for 3 s.
    assert got[1].received_at - got[0].received_at >= 2.9


def test_redirect_is_a_failure_and_is_not_followed(scaled_stack: LocalStackProcess) -> None:
    elsewhere = Receiver().start()
    receiver = Receiver(statuses=[(302, {"Location": elsewhere.url})]).start()
    try:
        video = completed_only(scaled_stack, receiver.url)
        got = take(receiver, 2, 30)
        assert len(got) == 2  # the 302 failed and was retried at the same URL
        assert nothing_more(elsewhere, 1.0) == []
    finally:
        receiver.stop()
        elsewhere.stop()
    delivery = wait_for_delivery(scaled_stack, video["id"], "succeeded")
    assert [a["status"] for a in delivery["attempts"]] == [302, 200]


def endpoint(stack: LocalStackProcess, url: str, **fields: Any) -> dict[str, Any]:
    with stack.http() as api:
        created = api.post("/webhook_endpoints", json={"url": url, **fields})
        assert created.status_code == 200, created.text
    WebhookEndpointWithSecret.model_validate(created.json())
    return dict(created.json())


def test_410_disables_the_endpoint(scaled_stack: LocalStackProcess) -> None:
    receiver = Receiver(default_status=410).start()
    try:
        hook = endpoint(scaled_stack, receiver.url, event_types=["video.completed"], description="goes away")
        with scaled_stack.http() as api:
            video = api.post("/videos", json=SORA).raise_for_status().json()
            got = take(receiver, 1, 30)
            assert len(got) == 1
            deadline = time.monotonic() + 10
            while api.get(f"/webhook_endpoints/{hook['id']}").json()["status"] != "disabled":
                assert time.monotonic() < deadline, "the endpoint was not disabled"
                time.sleep(0.2)
            shown = api.get(f"/webhook_endpoints/{hook['id']}").json()
            assert "410" in shown["disabled_reason"] and "secret" not in shown
            # A second job's event is not sent to a disabled endpoint.
            api.post("/videos", json=SORA).raise_for_status()
            assert nothing_more(receiver, 4.0) == []
            assert wait_for_delivery(scaled_stack, video["id"], "failed")["attempt_count"] == 1
            api.delete(f"/webhook_endpoints/{hook['id']}").raise_for_status()
    finally:
        receiver.stop()


def test_endpoints_fan_out_with_their_own_secrets_and_filters(scaled_stack: LocalStackProcess) -> None:
    everything, completed = Receiver().start(), Receiver().start()
    try:
        all_events = endpoint(scaled_stack, everything.url)
        only_completed = endpoint(scaled_stack, completed.url, event_types=["video.completed"])
        with scaled_stack.http() as api:
            video = api.post("/videos", json=SORA).raise_for_status().json()
            wait_for_status(api, video["id"], {"completed"})
            mine = until_completed(everything, video["id"])
            got_completed = until_completed(completed, video["id"])
            listed = api.get("/webhook_endpoints").json()["data"]
            assert all("secret" not in e for e in listed)
            for hook in (all_events, only_completed):
                api.delete(f"/webhook_endpoints/{hook['id']}").raise_for_status()
            assert api.get(f"/webhook_endpoints/{all_events['id']}").status_code == 404
    finally:
        everything.stop()
        completed.stop()
    assert [r.event["type"] for r in mine] == ["video.queued", "video.in_progress", "video.completed"]
    for item in mine:
        standardwebhooks.Webhook(all_events["secret"]).verify(item.body, item.headers)
    assert [r.event["type"] for r in got_completed] == ["video.completed"]
    standardwebhooks.Webhook(only_completed["secret"]).verify(got_completed[0].body, got_completed[0].headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(all_events["secret"]).verify(got_completed[0].body, got_completed[0].headers)


def signature_count(item: Received) -> int:
    return len(item.headers["webhook-signature"].split())


def test_secret_rotation_signs_with_both_during_the_grace_period(scaled_stack: LocalStackProcess) -> None:
    receiver = Receiver().start()
    try:
        hook = endpoint(scaled_stack, receiver.url, event_types=["video.completed"])
        with scaled_stack.http() as api:
            rotated = api.post(f"/webhook_endpoints/{hook['id']}/rotate_secret", json={"grace_period_seconds": 3})
            assert rotated.status_code == 200, rotated.text
            new_secret = rotated.json()["secret"]
            assert new_secret != hook["secret"] and rotated.json()["secret_rotating_until"] is not None
            during = api.post(f"/webhook_endpoints/{hook['id']}/test").raise_for_status().json()
            assert during["succeeded"] and during["status"] == 200
            time.sleep(3.5)
            after = api.post(f"/webhook_endpoints/{hook['id']}/test").raise_for_status().json()
            assert after["succeeded"]
            bad = api.post(f"/webhook_endpoints/{hook['id']}/rotate_secret", json={"grace_period_seconds": "soon"})
            assert bad.status_code == 400 and bad.json()["error"]["param"] == "grace_period_seconds"
            api.delete(f"/webhook_endpoints/{hook['id']}").raise_for_status()
        tests = [r for r in take(receiver, 10, 3) if r.event["type"] == "webhook_endpoint.test"]
        first, second = tests
    finally:
        receiver.stop()
    assert signature_count(first) == 2
    standardwebhooks.Webhook(hook["secret"]).verify(first.body, first.headers)  # the old secret still verifies
    standardwebhooks.Webhook(new_secret).verify(first.body, first.headers)
    assert signature_count(second) == 1
    standardwebhooks.Webhook(new_secret).verify(second.body, second.headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(hook["secret"]).verify(second.body, second.headers)


def test_endpoint_input_is_validated(scaled_stack: LocalStackProcess) -> None:
    with scaled_stack.http() as api:
        for body, param in (
            ({"url": "ftp://example.com/hook"}, "url"),
            ({"url": 7}, "url"),
            ({}, "url"),
            ({"url": "http://127.0.0.1:9/x", "event_types": ["video.exploded"]}, "event_types"),
            ({"url": "http://127.0.0.1:9/x", "event_types": "video.completed"}, "event_types"),
            ({"url": "http://127.0.0.1:9/x", "colour": "red"}, "colour"),
        ):
            response = api.post("/webhook_endpoints", json=body)
            assert response.status_code == 400, (body, response.text)
            assert response.json()["error"]["param"] == param
        assert api.get("/webhook_endpoints/we_000000000000000000000000").status_code == 404
        unknown = api.post("/videos/video_00000000000000000000000000000000/deliveries/dlv_x/redeliver")
        assert unknown.status_code == 404


def test_another_tenants_key_cannot_see_deliveries(scaled_stack: LocalStackProcess) -> None:
    with httpx.Client(base_url=scaled_stack.api_url, headers={"Authorization": "Bearer sk-nobody"}) as api:
        assert api.get("/webhook_endpoints").status_code == 401
        assert api.get("/videos/video_00000000000000000000000000000000/deliveries").status_code == 401
