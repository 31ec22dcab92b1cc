"""The chaos run at a reduced size, as `make chaos` runs it (a subprocess, its own `vidrelay local`): every
counter of lost, doubled or misreported work is zero, and the run really met faults, refusals and replays."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vidrelay.chaos.__main__ import FAILURE_COUNTERS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

JOBS = 56  # eight of each of the seven models


@pytest.mark.timeout(900)
def test_a_reduced_chaos_run_loses_nothing_and_doubles_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vidrelay.chaos", "--jobs", str(JOBS), "--timeout", "600"],
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
    )
    assert done.stdout.strip(), done.stderr[-4000:]
    report = json.loads(done.stdout)
    failures = {name: report[name] for name in FAILURE_COUNTERS if report[name]}
    assert failures == {}, json.dumps(report["details"], indent=1)[:6000]
    assert done.returncode == 0, done.stderr[-4000:]
    assert report["created"] == report["terminal"] == JOBS
    figures = report["figures"]
    assert set(figures["models"].values()) == {JOBS // 7}
    # The run was not a calm one: faults of both kinds, refused and dropped webhooks, replays of both kinds.
    assert figures["outcomes"]["failed"] >= 1 and figures["outcomes"]["completed"] >= JOBS * 3 // 4
    assert sum(figures["faults"].values()) >= JOBS // 6
    assert figures["webhook_answers"]["dropped"] > 0 and figures["webhook_answers"]["200"] > 0
    assert set(figures["replays"]) == {"after", "concurrent"}
    assert figures["s3"]["checked"] == figures["outcomes"]["completed"]
    assert figures["deliveries_compared"] >= JOBS
