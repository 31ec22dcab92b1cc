"""Webhook metrics are emitted per endpoint (an Endpoint dimension), as CloudWatch embedded metric format."""

from __future__ import annotations

import json

import pytest
from vidrelay_core.obs import record_attempt


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
