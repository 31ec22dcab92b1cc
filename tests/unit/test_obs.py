"""Webhook metrics are emitted per endpoint (an Endpoint dimension), as CloudWatch embedded metric format; log keys
belong to the invocation that set them, even when several run at once in one process (the local stack)."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from vidrelay_core.obs import keys, lambda_entry, logger, record_attempt
from vidrelay_core.queues import process_batch


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_attempt_metrics_carry_the_endpoint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    record_attempt("we_abc", succeeded=False, latency_ms=120)
    documents = emitted(capsys)
    names = [d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] for d in documents]
    assert names == ["WebhookAttempts", "WebhookFailures", "WebhookLatency"]
    for document in documents:
        assert document["Endpoint"] == "we_abc"
        assert ["Endpoint"] in [dims[-1:] for dims in document["_aws"]["CloudWatchMetrics"][0]["Dimensions"]]
    assert documents[2]["WebhookLatency"] in (120.0, [120.0])


def test_nothing_is_emitted_when_metrics_are_disabled(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    record_attempt("job", succeeded=True, latency_ms=5)
    assert emitted(capsys) == []


# ------------------------------------------------------------------------------------------------ log keys


Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """Reads every line the shared logger wrote since the test began, parsed."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    finally:
        handler.setStream(previous)


def context(name: str) -> SimpleNamespace:
    return SimpleNamespace(
        function_name=name,
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        aws_request_id=f"req-{name}",
    )


def test_two_functions_running_at_once_keep_their_own_log_keys(log_lines: Lines) -> None:
    # Both invocations set their keys, then wait for each other before logging: with keys shared by the process
    # (Logger.inject_lambda_context), the second one's keys would be on both lines.
    both_set = threading.Barrier(2, timeout=10)

    def handler(event: dict[str, Any], _: Any) -> None:
        keys(video_id=event["video_id"])
        both_set.wait()
        logger.info("step", extra={"step": event["step"]})

    api, notifier = lambda_entry(handler), lambda_entry(handler)
    threads = [
        threading.Thread(target=api, args=({"video_id": "video_a", "step": "create"}, context("ApiFunction"))),
        threading.Thread(target=notifier, args=({"video_id": "video_b", "step": "fan_out"}, context("Notifier"))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    by_step = {line["step"]: line for line in log_lines() if "step" in line}
    assert set(by_step) == {"create", "fan_out"}, log_lines()
    assert (by_step["create"]["function_name"], by_step["create"]["video_id"]) == ("ApiFunction", "video_a")
    assert by_step["create"]["function_request_id"] == "req-ApiFunction"
    assert (by_step["fan_out"]["function_name"], by_step["fan_out"]["video_id"]) == ("Notifier", "video_b")
    assert by_step["fan_out"]["function_request_id"] == "req-Notifier"


def test_records_of_one_batch_handled_side_by_side_log_their_own_ids(log_lines: Lines) -> None:
    all_set = threading.Barrier(3, timeout=10)

    def record_handler(record: Any) -> None:
        body = json.loads(record.body)
        keys(video_id=body["video_id"])
        all_set.wait()
        logger.info("record", extra={"record_of": body["video_id"]})

    @lambda_entry
    def handler(event: dict[str, Any], _: Any) -> Any:
        return process_batch(event, record_handler, workers=3)

    records = [
        {"messageId": f"m{i}", "receiptHandle": f"r{i}", "body": json.dumps({"video_id": f"video_{i}"})}
        for i in range(3)
    ]
    assert handler({"Records": records}, context("NotifierFunction")) == {"batchItemFailures": []}

    lines = [line for line in log_lines() if "record_of" in line]
    assert sorted(line["record_of"] for line in lines) == ["video_0", "video_1", "video_2"]
    assert all(line["video_id"] == line["record_of"] for line in lines), lines
    assert all(line["function_name"] == "NotifierFunction" for line in lines)
    # And the invocation's keys are gone once it returned: nothing leaks into the next invocation's lines.
    logger.info("after", extra={"after": True})
    [after] = [line for line in log_lines() if "after" in line]
    assert "video_id" not in after and "function_name" not in after, after
