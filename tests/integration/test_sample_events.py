"""Each sample event in events/ is accepted by its function's real handler (what `sam local invoke -e` feeds).

The handlers run inside a fresh local stack in a child process, so the environment the stack sets up for its
functions cannot leak into other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from vidrelay.local.stack import LocalOptions, LocalStack

    cases = json.loads(sys.argv[1])
    stack = LocalStack(LocalOptions(port=0, state_dir=Path(sys.argv[2])))
    stack.start()
    try:
        results = {}
        for name, (function, path, timeout_s) in cases.items():
            event = json.loads(Path(path).read_text())
            results[name] = stack.pools[function].invoke(event, timeout_s=timeout_s)
    finally:
        stack.stop()
    print(json.dumps(results))
    """
)

CASES = {
    "api-create": ("ApiFunction", "events/api-create-video.json", 30),
    "api-get": ("ApiFunction", "events/api-get-video.json", 30),
    "poller": ("PollerFunction", "events/poller-schedule.json", 16.5),  # 1.5 s of sweeping
    "downloader": ("DownloaderFunction", "events/downloader-sqs.json", 60),
    "notifier": ("NotifierFunction", "events/notifier-sqs.json", 30),
    "streamer": ("StreamerFunction", "events/streamer-sqs.json", 30),
    "intake": ("IntakeFunction", "events/intake-s3-sqs.json", 30),
}


def run_cases(tmp_path: Path) -> dict[str, Any]:
    cases = {name: (fn, str(ROOT / path), timeout) for name, (fn, path, timeout) in CASES.items()}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(cases), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def test_every_function_has_a_sample_event() -> None:
    functions = {fn for fn, _, _ in CASES.values()}
    assert functions == {
        "ApiFunction",
        "PollerFunction",
        "DownloaderFunction",
        "NotifierFunction",
        "StreamerFunction",
        "IntakeFunction",
    }
    for _, path, _ in CASES.values():
        assert (ROOT / path).is_file(), path


def test_sample_events_run_through_their_handlers(tmp_path: Path) -> None:
    results = run_cases(tmp_path)

    created = results["api-create"]
    assert created["statusCode"] == 200, created
    video = json.loads(created["body"])
    assert video["object"] == "video" and video["status"] == "queued"
    assert video["metadata"] == {"order": "A-17"}

    missing = results["api-get"]
    assert missing["statusCode"] == 404
    assert json.loads(missing["body"])["error"]["code"] == "not_found"

    # The job created above is in flight: the sweep must have looked at it.
    assert results["poller"]["checked"] >= 1, results["poller"]
    # ... and report its age, what the stuck-job alarm watches (created a few seconds before the sweep).
    assert 0 <= results["poller"]["oldest_inflight_age_s"] < 120, results["poller"]

    # Both SQS samples name a video that does not exist: handled (skipped), not failed and retried forever.
    assert results["downloader"] == {"batchItemFailures": []}
    assert results["notifier"] == {"batchItemFailures": []}
    assert results["streamer"] == {"batchItemFailures": []}
    # The intake sample: an upload (its URL-encoded key names an object this fresh stack does not hold, so it is
    # skipped as gone) and the test event S3 sends when the notification is configured (ignored).
    assert results["intake"] == {"batchItemFailures": []}
