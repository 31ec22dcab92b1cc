"""The poller's handler emits what template.yaml's StuckJobsAlarm watches: the same namespace, metric name and
dimensions, in seconds, and no data point at all when nothing was in flight."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from vidrelay_core.polling import SweepStats

from vidrelay.local.runtime import LambdaContext
from vidrelay.local.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]


def _poller_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("poller_app_under_test", ROOT / "functions/poller/app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sweep(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stats: SweepStats) -> list[Any]:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    module = _poller_module()
    parts = SimpleNamespace(
        settings=SimpleNamespace(poller_sweep_seconds=0.0, poller_tick_s=1.0),
        poller=SimpleNamespace(sweep=lambda until, tick_s: stats),
    )
    monkeypatch.setattr(module, "components", lambda: parts)
    context = LambdaContext(
        function_name="PollerFunction",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:PollerFunction",
        aws_request_id="req-1",
        deadline=time.time() + 70,
    )
    module.lambda_handler({}, context)
    lines = capsys.readouterr().out.splitlines()
    return [json.loads(line) for line in lines if line.startswith("{") and '"_aws"' in line]


def _alarm() -> dict[str, Any]:
    template = load_yaml((ROOT / "template.yaml").read_text())
    properties: dict[str, Any] = template["Resources"]["StuckJobsAlarm"]["Properties"]
    return properties


def test_the_oldest_in_flight_age_is_emitted_as_the_stuck_job_alarm_reads_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    documents = _sweep(monkeypatch, capsys, SweepStats(sweeps=3, checked=4, oldest_inflight_age_s=1234.5))
    alarm = _alarm()

    (document,) = [d for d in documents if alarm["MetricName"] in d]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    metrics = {m["Name"]: m.get("Unit") for m in directive["Metrics"]}
    assert document[alarm["MetricName"]] in (1234.5, [1234.5])
    assert metrics[alarm["MetricName"]] == "Seconds"
    assert directive["Namespace"] == alarm["Namespace"]
    # CloudWatch matches an alarm to a metric by its exact dimension set.
    assert [[d["Name"] for d in alarm["Dimensions"]]] == directive["Dimensions"]
    for dimension in alarm["Dimensions"]:
        assert document[dimension["Name"]] == dimension["Value"]


def test_a_sweep_with_nothing_in_flight_emits_no_age(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    documents = _sweep(monkeypatch, capsys, SweepStats(sweeps=3, checked=0))

    assert documents, "the sweep's other metrics are still emitted"
    assert not any(_alarm()["MetricName"] in d for d in documents)
