"""Webhooks from `vidrelay local` verify with the Standard Webhooks library and with the openai SDK."""

from __future__ import annotations

import queue
import time

import openai
import pytest
import standardwebhooks
from vidrelay_core.contract import Video, VideoEvent

from tests.e2e.conftest import LocalStackProcess, wait_for_status
from vidrelay.receiver import Received, Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def collect_until_completed(receiver: Receiver, video_id: str, timeout_s: float = 60) -> list[Received]:
    received: list[Received] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            item = receiver.events.get(timeout=0.5)
        except queue.Empty:
            continue
        received.append(item)
        if item.event["type"] == "video.completed" and item.event["data"]["id"] == video_id:
            return received
    raise AssertionError(f"no video.completed for {video_id}; got {[r.event['type'] for r in received]}")


def test_completed_webhook_verifies_with_both_libraries(local_stack: LocalStackProcess, receiver: Receiver) -> None:
    secret = str(local_stack.info["webhook_secret"])
    with local_stack.http() as api:
        video = (
            api.post(
                "/videos",
                json={
                    "model": "sora-2",
                    "prompt": "a paper boat on a river",
                    "seconds": "4",
                    "size": "720x1280",
                    "webhook_url": receiver.url,
                    "metadata": {"order": "A-17"},
                },
            )
            .raise_for_status()
            .json()
        )
        received = collect_until_completed(receiver, video["id"])
        final = wait_for_status(api, video["id"], {"completed"})

    sdk = openai.OpenAI(base_url=local_stack.api_url, api_key=local_stack.api_key, webhook_secret=secret)
    for item in received:
        assert item.verified
        standardwebhooks.Webhook(secret).verify(item.body, item.headers)  # raises on a bad signature
        sdk.webhooks.verify_signature(item.body, item.headers)  # likewise
        assert item.event["object"] == "event"
        assert item.event["type"].startswith("video.")
        assert item.event["data"]["id"] == video["id"]
        assert item.headers["webhook-id"] == item.event["id"]
        VideoEvent.model_validate(item.event)  # the published schema matches the wire

    completed = received[-1].event
    assert completed["type"] == "video.completed"
    assert completed["data"]["status"] == "completed"
    assert completed["data"]["metadata"] == {"order": "A-17"}
    assert completed["data"]["output"]["width"] == 720 and completed["data"]["output"]["height"] == 1280
    assert final["output"]["sha256"] == completed["data"]["output"]["sha256"]
    Video.model_validate(final)

    # A signature made with another secret, or over a changed body, is refused by both verifiers.
    tampered = received[-1].body.replace(b"completed", b"c0mpleted", 1)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(tampered, received[-1].headers)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        sdk.webhooks.verify_signature(tampered, received[-1].headers)
