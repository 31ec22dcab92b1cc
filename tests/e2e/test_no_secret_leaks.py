"""The upstream account key never leaves the functions: not in a log line, an event, a job record or an error.

The stack runs with debug logging, every event on the topic is copied to a queue the test owns, and jobs are
driven through success, upstream failure and upstream refusal; then everything observable is searched.
"""

from __future__ import annotations

import io
import json
import time
import zlib
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import LocalStackProcess, wait_for_status
from vidrelay.receiver import Receiver

pytestmark = pytest.mark.e2e


def tap_events(local_stack: LocalStackProcess) -> str:
    """Subscribes a fresh queue to the video-events topic and returns its URL."""
    sns, sqs = local_stack.aws("sns"), local_stack.aws("sqs")
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if "VideoEvents" in t["TopicArn"])
    url = sqs.create_queue(QueueName=f"leak-tap-{int(time.time() * 1000)}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return str(url)


def drain(local_stack: LocalStackProcess, queue_url: str) -> list[str]:
    sqs = local_stack.aws("sqs")
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages")
        if not messages:
            return bodies
        bodies.extend(m["Body"] for m in messages)


def readable(value: Any) -> Any:
    """A stored value as text to search: binary attributes inflated when they are deflated (the delivery ledger
    keeps event bodies so), else their bytes as Latin-1, so a key inside them is found all the same."""
    if isinstance(value, bytes):
        try:
            return zlib.decompress(value).decode(errors="replace")
        except zlib.error:
            return value.decode("latin-1")
    if isinstance(value, dict):
        return {k: readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [readable(v) for v in value]
    return value


def table_items(local_stack: LocalStackProcess) -> list[dict[str, Any]]:
    dynamodb = local_stack.aws("dynamodb")
    items: list[dict[str, Any]] = []
    for name in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=name):
            items.extend(readable(item) for item in page["Items"])
    return items


def test_upstream_key_appears_nowhere(local_stack: LocalStackProcess, receiver: Receiver) -> None:
    key = local_stack.upstream_key
    tap = tap_events(local_stack)
    bodies: list[str] = []
    with local_stack.http() as api:
        prompts = {
            "ok": "a quiet harbour",
            "failed": "a storm [sim:fail]",
            "refused": "an outage [sim:submit_500]",
        }
        videos: dict[str, dict[str, Any]] = {}
        for name, prompt in prompts.items():
            response = api.post(
                "/videos",
                json={
                    "model": "sora-2",
                    "prompt": prompt,
                    "seconds": "4",
                    "size": "1280x720",
                    "webhook_url": receiver.url,
                },
            )
            bodies.append(response.text)
            videos[name] = response.json()
        # Every other family: Veo (multipart), Seedance (its video_url on another host), the chat stream, and a
        # stream cut midway.
        png = io.BytesIO()
        Image.new("RGB", (1280, 720), (20, 90, 160)).save(png, "PNG")
        others = {
            "veo": {
                "data": {"model": "veo-3.1-fast-generate-preview", "duration": "4", "prompt": "a lighthouse"},
                "files": {"input_reference": ("l.png", png.getvalue(), "image/png")},
            },
            "seedance": {"json": {"model": "seedance-2.0", "prompt": "a dancer", "duration": 4}},
            "chat": {"json": {"model": "sora_video2", "prompt": "a paper boat"}},
            "chat-cut": {"json": {"model": "sora_video2", "prompt": "a paper boat [sim:stream_cut]"}},
        }
        for name, kwargs in others.items():
            body = kwargs.get("json") or kwargs["data"]
            body["webhook_url"] = receiver.url
            response = api.post("/videos", **kwargs)
            bodies.append(response.text)
            videos[name] = response.json()
        for name, video in videos.items():
            # A submit that keeps failing with 500 is retried with backoff: it stays queued, so only look at it.
            statuses = {"queued", "in_progress"} if name == "refused" else {"completed", "failed"}
            if "id" in video:
                final = wait_for_status(api, video["id"], statuses)
                bodies.append(json.dumps(final))
                bodies.append(api.get(f"/videos/{video['id']}/content", follow_redirects=False).text)
        bodies.append(api.get("/videos", params={"limit": 100}).text)
        bodies.append(api.get("/videos/video_missing/content").text)
        # Cancel the job whose submit keeps failing, so it stops retrying against the shared simulator.
        bodies.append(api.delete(f"/videos/{videos['refused']['id']}").raise_for_status().text)

    assert videos["ok"]["status"] == "queued"
    assert any(r["status"] == 500 for r in local_stack.sim_requests()), "the refusal never reached the upstream"
    time.sleep(1.0)  # let the last webhooks and log lines land
    events = drain(local_stack, tap)
    assert events, "the tap saw no events: the test would prove nothing"
    webhook_bodies = []
    while not receiver.events.empty():
        webhook_bodies.append(receiver.events.get().body.decode())
    assert webhook_bodies
    items = table_items(local_stack)
    # The delivery ledger's event bodies (stored deflated) are searched as the events they are.
    ledger_bodies = [json.loads(item["event_body_z"]["B"]) for item in items if "event_body_z" in item]
    assert ledger_bodies and all(body["object"] == "event" for body in ledger_bodies), "no event body in the ledger"
    records = json.dumps(items)
    logs = local_stack.logs()
    assert "DEBUG" in logs or "INFO" in logs, "no function log lines captured: the test would prove nothing"
    api_requests = [r for r in local_stack.sim_requests() if r.get("server") != "cdn"]
    assert all(request["had_bearer"] for request in api_requests), "the upstream got no key"
    # The signed result links (Seedance's video_url, the chat stream's link) never get our key.
    fetched = [t for t in httpx.get(f"{local_stack.simulator_url}/_sim/tasks", timeout=10).json() if t["cdn_requests"]]
    assert {t["dialect"] for t in fetched} >= {"generations", "chat"}
    assert not any(t["cdn_authorization_seen"] for t in fetched), "a result link was fetched with a key"

    for where, text in {
        "API responses": "\n".join(bodies),
        "events": "\n".join(events),
        "webhooks": "\n".join(webhook_bodies),
        "job records": records,
        "logs": logs,
    }.items():
        assert key not in text, f"the upstream key leaked into {where}"
        assert key[7:] not in text, f"part of the upstream key leaked into {where}"
