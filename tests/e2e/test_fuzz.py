"""`make fuzz` at a reduced size: schemathesis on the served /openapi.json and hostile bodies on every route, against
its own `vidrelay local`, must find no 5xx, no stack trace, no answer off the document and no refusal that is not
OpenAI-shaped. (The README quotes the full-size run.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_a_reduced_fuzz_run_finds_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vidrelay.fuzz", "--cases", "12", "--hostile", "60", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.stdout.startswith("{"), done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["failures"] == 0, json.dumps(report["examples"], indent=1)[:6000]
    # It reached every kind of route and got refusals as well as answers.
    operations = {name for name in report["cases_per_operation"] if not name.startswith("hostile")}
    assert {"POST /v1/videos", "GET /v1/videos/{video_id}", "POST /v1/webhook_endpoints"} <= operations, operations
    assert report["cases"] > 300
    assert {"200", "400", "404"} <= set(report["statuses"]), report["statuses"]
