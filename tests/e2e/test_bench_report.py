"""`python -m vidrelay.bench` at a tiny size, as `make bench` runs it: one JSON document on stdout holding every
SPEC §11 figure, each with its method and verdict (the figures' values are not asserted: no timing is)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT

FIGURES = (
    "download",
    "cold_import",
    "sweep",
    "webhook_latency",
    "cost_per_1000_jobs",
    "idle_month",
    "delivery_throughput",
    "drain",
)
VERDICTS = {"meets target", "misses target", "measured (no numeric target)"}

TINY = [
    "--sizes-mib=1,2",
    "--runs=1",
    "--import-runs=1",
    "--sweep-sizes=4:8,8:16",
    "--sweep-relay-due=20",
    "--jobs=3",
    "--idle-s=2",
    "--throughput-events=4",
    "--drain",
    "--drain-jobs=3",
]


@pytest.mark.timeout(900)
def test_bench_prints_every_figure_with_method_and_verdict() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vidrelay.bench", *TINY], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout)

    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["python"]
    for figure in FIGURES:
        assert isinstance(report.get(figure), dict), f"{figure} missing"
        assert report[figure]["verdict"] in VERDICTS, figure
        assert report[figure].get("method") or report[figure].get("notes"), f"{figure} has no method"
    assert set(report["verdicts"]) == set(FIGURES)

    download = report["download"]["results"]
    assert [r["size_mib"] for r in download] == [1.0, 2.0]
    for result in download:
        assert result["same_bytes"] and result["plain_http_to_file"]["size_ok"]
        for sink in ("moto", "discard_sink"):
            assert result[sink]["vidrelay_stream_url_to_s3"]["size_ok"]
            assert result[sink]["boto3_upload_fileobj"]["size_ok"]
            assert result[sink]["throughput_ratio_vidrelay_over_upload_fileobj"] > 0

    handlers = report["cold_import"]["handlers"]
    assert set(handlers) == {path.parent.name for path in (ROOT / "functions").glob("*/app.py")}
    assert all(entry["ratio_to_boto3"] > 0 for entry in handlers.values())

    sweeps = report["sweep"]["results"]
    assert [(r["due"], r["finished"]) for r in sweeps] == [(4, 8), (8, 16)]
    for sweep in sweeps:
        assert sweep["store_and_relay"]["checked"] == sweep["due"]
        assert sweep["polls_per_task_max"] == 1  # each due job checked once in the pass
    relay = report["sweep"]["relay_at_target"]
    # Every task polled once, each answer read as the unfinished task it is.
    assert (relay["due"], relay["tasks_polled"], relay["polls_per_task_max"]) == (20, 20, 1)
    assert set(relay["poll_states"]) <= {"queued", "in_progress"} and sum(relay["poll_states"].values()) == 20
    cloud = report["sweep"]["cloud_pass_10000_due"]
    assert cloud["seconds"] == round(cloud["relay_s"] + cloud["store_s"], 2)

    assert report["webhook_latency"]["count"] == 3
    cost = report["cost_per_1000_jobs"]
    assert cost["local_pattern"]["usd_per_1000_jobs"] > 0 and cost["cloud_sora2"]["usd_per_1000_jobs"] > 0
    assert cost["local_pattern"]["requests_per_job"]["ApiFunction"]  # counted calls, attributed per function
    # The thumbnailer runs in worker processes: their calls reach the count, attributed to it.
    assert cost["local_pattern"]["requests_per_job"]["ThumbnailerFunction"]["s3.PutObject"] > 0
    units = cost["local_pattern"]["dynamodb_units_per_job"]
    assert units["ThumbnailerFunction.write"] > 0
    # A new job enters both keys-only indexes: index writes are counted apart from the table's.
    assert units["ApiFunction.index_write"] >= 2 and units["ApiFunction.write"] > units["ApiFunction.index_write"]
    idle = report["idle_month"]
    assert idle["sqs_polling_floor"]["total_usd"] > 0 and "PollerFunction" in idle["scheduled_functions"]
    for receiver in ("receiver_2xx", "receiver_failing_half"):
        figure = report["delivery_throughput"][receiver]
        assert figure["events_attempted"] == 4 and figure["attempts_per_s"] > 0
    assert report["drain"]["terminal_events_received"] == 3
