"""The local stack delivers SNS to subscribed functions as AWS does: only what the subscription's filter policy
lets through, in Lambda's SNS event shape, as asynchronous invocations that are retried and then handed to the
on-failure queue with Lambda's destination record."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from vidrelay.local.aws import LocalAws
from vidrelay.local.router import SnsSubscriber
from vidrelay.local.stack import LocalOptions, LocalStack
from vidrelay.local.template import AsyncInvokeSpec, EventSpec, FunctionSpec

REGION = "us-east-1"


@dataclass
class RecordingPool:
    """A function that records every event it is invoked with, failing the first `failures` invocations."""

    spec: FunctionSpec
    failures: int = 0
    region: str = REGION
    events: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, event: dict[str, Any], *, timeout_s: float | None = None) -> Any:
        self.events.append(event)
        if len(self.events) <= self.failures:
            raise RuntimeError(f"invocation {len(self.events)} failed")
        return None


@dataclass
class Resources:
    topic_arn: str
    failure_queue_url: str

    def ref(self, logical_id: str) -> str:
        assert logical_id == "Topic"
        return self.topic_arn

    def queue_url(self, logical_id: str) -> str:
        assert logical_id == "FailureQueue"
        return self.failure_queue_url


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    server = LocalAws().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def env(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": aws.url,
    }.items():
        monkeypatch.setenv(name, value)


def subscribed(pool: RecordingPool, *, max_retries: int = 2) -> tuple[Any, Any, str, list[SnsSubscriber]]:
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic_arn = sns.create_topic(Name=f"events-{time.monotonic_ns()}")["TopicArn"]
    failure_queue_url = sqs.create_queue(QueueName=f"failed-{time.monotonic_ns()}")["QueueUrl"]
    stack = LocalStack(LocalOptions(containers=1))
    stack.resources = Resources(topic_arn, failure_queue_url)  # type: ignore[assignment]
    event = EventSpec(name="Completed", kind="sns", topic="Topic", filter_policy={"type": ["video.completed"]})
    pool.spec.async_invoke = AsyncInvokeSpec(max_retries=max_retries, on_failure="FailureQueue")
    subscribers = stack._sns_subscribers(sqs, pool.spec, event, pool)  # type: ignore[arg-type]
    return sns, sqs, topic_arn, subscribers


def publish(sns: Any, topic_arn: str, event_type: str, video_id: str) -> None:
    sns.publish(
        TopicArn=topic_arn,
        Message=json.dumps({"type": event_type, "data": {"id": video_id}}),
        MessageAttributes={"type": {"DataType": "String", "StringValue": event_type}},
    )


def run_until(subscribers: list[SnsSubscriber], done: Any, timeout_s: float = 20) -> None:
    stop = threading.Event()
    for subscriber in subscribers:
        subscriber._halt = stop
        subscriber.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not done() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for subscriber in subscribers:
            subscriber.join(timeout=5)


def spec() -> FunctionSpec:
    return FunctionSpec("ThumbnailerFunction", "functions/thumbnailer/", "app.lambda_handler", 30, 128, {}, [])


def test_only_events_the_filter_policy_matches_reach_the_function(env: None) -> None:
    pool = RecordingPool(spec())
    sns, _, topic_arn, subscribers = subscribed(pool)

    for event_type, video_id in (("video.failed", "v1"), ("video.completed", "v2"), ("video.queued", "v3")):
        publish(sns, topic_arn, event_type, video_id)
    run_until(subscribers, lambda: pool.events, timeout_s=5)
    time.sleep(0.5)  # anything else would have arrived by now

    assert len(pool.events) == 1
    (record,) = pool.events[0]["Records"]
    assert record["EventSource"] == "aws:sns"
    assert record["Sns"]["TopicArn"] == topic_arn
    assert json.loads(record["Sns"]["Message"])["data"]["id"] == "v2"
    assert record["Sns"]["MessageAttributes"]["type"] == {"Type": "String", "Value": "video.completed"}


def test_a_failing_invocation_is_retried_then_sent_to_the_on_failure_queue(env: None) -> None:
    pool = RecordingPool(spec(), failures=10)
    sns, sqs, topic_arn, subscribers = subscribed(pool, max_retries=2)
    publish(sns, topic_arn, "video.completed", "v9")

    run_until(subscribers, lambda: len(pool.events) >= 3, timeout_s=20)
    time.sleep(0.5)
    failure_queue = subscribers[0]._failure_queue_url
    received = sqs.receive_message(QueueUrl=failure_queue, WaitTimeSeconds=2).get("Messages", [])

    assert len(pool.events) == 3  # the first try and Lambda's two retries, no more
    (message,) = received
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responsePayload"]["errorMessage"] == "invocation 3 failed"
    (payload,) = record["requestPayload"]["Records"]
    assert json.loads(payload["Sns"]["Message"])["data"]["id"] == "v9"
