"""Logger and Metrics, created once and shared by every function (Powertools).

Log keys (the function's name and request id, the video and event ids) are kept per thread of execution
(Powertools' thread-safe keys, a ContextVar), never on the shared formatter: in Lambda a process runs one
invocation at a time, but the local stack runs every function in one process side by side, and shared keys made
one function's lines carry another's name. Work handed to a thread pool takes the keys along (`in_context`).
"""

from __future__ import annotations

import contextvars
import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger(service="vidrelay")
metrics = Metrics(namespace="vidrelay", service="vidrelay")

T = TypeVar("T")
Handler = Callable[[Any, Any], Any]
_cold_start = True


def keys(**values: Any) -> None:
    """Adds keys to every line this invocation logs from here on (only this invocation's)."""
    logger.thread_safe_append_keys(**values)


def in_context(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn` run with the keys (and every other context variable) of the caller: for work given to a thread pool."""
    context = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        return context.copy().run(fn, *args, **kwargs)

    return run


def lambda_entry(handler: Handler) -> Handler:
    """A function's entry point: its Lambda context as this invocation's log keys, then metrics flushed at the
    end. Instead of `Logger.inject_lambda_context`, whose keys are shared by every thread of the process."""

    @functools.wraps(handler)
    def entry(event: Any, context: Any) -> Any:
        global _cold_start
        cold, _cold_start = _cold_start, False
        logger.thread_safe_clear_keys()
        keys(
            cold_start=cold,
            function_name=getattr(context, "function_name", ""),
            function_memory_size=getattr(context, "memory_limit_in_mb", 0),
            function_arn=getattr(context, "invoked_function_arn", ""),
            function_request_id=getattr(context, "aws_request_id", ""),
        )
        try:
            return handler(event, context)
        finally:
            logger.thread_safe_clear_keys()

    return metrics.log_metrics(entry)


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
