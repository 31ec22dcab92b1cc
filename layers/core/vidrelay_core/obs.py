"""Logger and Metrics, created once and shared by every function (Powertools)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger(service="vidrelay")
metrics = Metrics(namespace="vidrelay", service="vidrelay")


def record_attempt(target: str, *, succeeded: bool, latency_ms: int) -> None:
    """Per-target webhook metrics (attempts, successes, failures, latency), each with an Endpoint dimension.
    Emitted one by one (EMF), since a batch handles several targets and Metrics' dimensions are per flush."""
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
        return
    for name, unit, value in (
        ("WebhookAttempts", MetricUnit.Count, 1.0),
        ("WebhookSuccesses" if succeeded else "WebhookFailures", MetricUnit.Count, 1.0),
        ("WebhookLatency", MetricUnit.Milliseconds, float(latency_ms)),
    ):
        with single_metric(name=name, unit=unit, value=value, namespace="vidrelay") as metric:
            metric.add_dimension(name="Endpoint", value=target)
