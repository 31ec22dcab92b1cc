"""The `vidrelay` command over the local stack's API, run as a user runs it: a subprocess, from a folder inside
the stack's folder (found by walking up), reading only what it prints and its exit code."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import LocalStackProcess, wait_for_status
from vidrelay.receiver import Receiver

pytestmark = pytest.mark.e2e

VIDRELAY = Path(sys.executable).with_name("vidrelay")
TEXT_JOB = ("--model", "sora-2", "--prompt", "a lighthouse from the cli", "--seconds", "4", "--size", "1280x720")


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDRELAY_API_")}
    return {**env, "COLUMNS": "80", **extra}


def run(stack: LocalStackProcess, *args: str, timeout: float = 90, **env: str) -> subprocess.CompletedProcess[str]:
    """`vidrelay ARGS` from a folder two levels inside the stack's own (where its .vidrelay/ is)."""
    inside = stack.log_path.parent / "project" / "src"
    inside.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(VIDRELAY), *args], cwd=inside, env=cli_env(**env), capture_output=True, text=True, timeout=timeout
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done.stdout


def one_line_failure(done: subprocess.CompletedProcess[str], exit_code: int) -> str:
    """The failure is one line on stderr, no traceback, and the exit code says what kind."""
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert done.returncode == exit_code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def new_key(stack: LocalStackProcess, tenant: str, *options: str) -> tuple[str, str]:
    """(key id, key) of a new key for `tenant`."""
    out = ok(run(stack, "keys", "create", "--tenant", tenant, *options)).splitlines()
    key_id = re.search(r"key (key_[0-9a-f]+)", out[0])
    assert key_id, out
    return key_id.group(1), out[-1]


@pytest.fixture
def slow_simulator(local_stack: LocalStackProcess) -> Iterator[None]:
    """Generations created meanwhile take 60 s, so a job stays in flight while a test looks at it."""
    config = f"{local_stack.simulator_url}/_sim/config"
    before = httpx.get(config, timeout=10).json()["sim_seconds"]
    httpx.post(config, json={"sim_seconds": 60}, timeout=10).raise_for_status()
    yield
    httpx.post(config, json={"sim_seconds": before}, timeout=10).raise_for_status()


# -- the failures a newcomer meets ----------------------------------------------------------------------------------


def test_a_missing_image_is_named_before_anything_is_sent(local_stack: LocalStackProcess) -> None:
    submits = local_stack.sim_submits()
    line = one_line_failure(run(local_stack, "submit", *TEXT_JOB, "--image", "/nope.png"), 2)
    assert line == "vidrelay submit: --image /nope.png: no such file"
    assert local_stack.sim_submits() == submits


def test_a_wrong_key_and_a_revoked_key_get_the_apis_401_message(local_stack: LocalStackProcess) -> None:
    line = one_line_failure(run(local_stack, "jobs", "--api-key", "sk-wrong"), 1)
    assert line.startswith(f"vidrelay jobs: the API at {local_stack.api_url} refused the key (the key from --api-key)")
    assert "Incorrect API key provided." in line and "vidrelay keys create" in line

    key_id, key = new_key(local_stack, f"cli-{secrets.token_hex(3)}")
    ok(run(local_stack, "jobs", VIDRELAY_API_KEY=key))
    assert ok(run(local_stack, "keys", "revoke", key_id)).startswith(f"revoked {key_id}")
    assert ok(run(local_stack, "keys", "revoke", key_id)).startswith(f"already revoked {key_id}")
    line = one_line_failure(run(local_stack, "jobs", VIDRELAY_API_KEY=key), 1)
    assert "refused the key (the key from VIDRELAY_API_KEY): Incorrect API key provided." in line
    assert key not in line


def test_an_unknown_video_is_the_404_line(local_stack: LocalStackProcess) -> None:
    for command in ("get", "wait", "download", "cancel", "delete", "deliveries"):
        line = one_line_failure(run(local_stack, command, "video_0000"), 1)
        assert line == (
            f"vidrelay {command}: not found: No video found with id 'video_0000'. (`vidrelay jobs` lists your videos)"
        )


def test_a_400_shows_the_apis_message_and_param(local_stack: LocalStackProcess) -> None:
    line = one_line_failure(run(local_stack, "submit", *TEXT_JOB[:6], "--seconds", "5"), 1)
    assert line.startswith("vidrelay submit: invalid request (param: seconds): Invalid value for 'seconds': '5'.")
    assert '"4" | "8" | "12"' in line


def test_a_429_shows_when_to_retry(local_stack: LocalStackProcess) -> None:
    _, key = new_key(local_stack, f"cli-rl-{secrets.token_hex(3)}", "--rate-per-minute", "1")
    while time.time() % 60 > 45:  # both creates in one minute
        time.sleep(0.5)
    ok(run(local_stack, "submit", *TEXT_JOB, "--api-key", key))
    line = one_line_failure(run(local_stack, "submit", *TEXT_JOB, "--api-key", key), 1)
    found = re.fullmatch(r"vidrelay submit: rate limited: .+ Retry after (\d+) s\.", line)
    assert found and 1 <= int(found.group(1)) <= 60, line


DEFAULT_SIGINT_THEN_EXEC = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


def test_ctrl_c_while_waiting_is_one_line_and_exit_130(local_stack: LocalStackProcess, slow_simulator: None) -> None:
    video_id = ok(run(local_stack, "submit", *TEXT_JOB)).split()[0]
    inside = local_stack.log_path.parent / "project" / "src"
    # Started as from a terminal, with Ctrl-C's default: a test run launched in the background (`make test &`) has
    # SIGINT ignored, and an ignored signal stays ignored across exec, where Python then leaves it so.
    as_from_a_terminal = [sys.executable, "-c", DEFAULT_SIGINT_THEN_EXEC, str(VIDRELAY)]
    waiting = subprocess.Popen(
        [*as_from_a_terminal, "wait", video_id],
        cwd=inside,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(2.0)
    waiting.send_signal(signal.SIGINT)
    out, err = waiting.communicate(timeout=20)
    done = subprocess.CompletedProcess(waiting.args, waiting.returncode, out.decode(), err.decode())
    line = one_line_failure(done, 130)
    assert line.startswith(f"vidrelay wait: stopped waiting for {video_id} (")
    assert line.endswith(f"it goes on: `vidrelay wait {video_id}` to pick it up again")

    line = one_line_failure(run(local_stack, "wait", video_id, "--timeout", "1"), 3)
    assert re.fullmatch(
        rf"vidrelay wait: {video_id} is still (queued|in_progress) \d+% after 1 s; it goes on: .+", line
    )

    # cancel: said as what it was, and only once
    assert re.fullmatch(
        rf"canceled {video_id} while (queued|in_progress) \d+%; it is deleted and will not be fetched\n",
        ok(run(local_stack, "cancel", video_id)),
    )
    assert "not found: No video found" in one_line_failure(run(local_stack, "cancel", video_id), 1)


# -- every operation ---------------------------------------------------------------------------------------------


def test_submit_wait_get_download_and_delete(local_stack: LocalStackProcess, tmp_path: Path) -> None:
    done = ok(run(local_stack, "submit", *TEXT_JOB, "--wait", "--timeout", "60", "--out", str(tmp_path / "out")))
    video_id = done.split()[0]
    assert f"saved {tmp_path / 'out' / video_id}.mp4" in done

    shown = ok(run(local_stack, "get", video_id))
    assert re.search(r"^status\s+completed$", shown, re.M) and "1280x720  4.0 s" in shown
    video = json.loads(ok(run(local_stack, "get", video_id, "--json")))
    assert video["id"] == video_id and video["status"] == "completed"

    waited = ok(run(local_stack, "wait", video_id))
    assert waited.startswith(f"{video_id}  completed  1280x720  4.0 s")

    target = tmp_path / "downloads" / "lighthouse.mp4"
    assert ok(run(local_stack, "download", video_id, "-o", str(target))).startswith(f"saved {target}")
    assert target.stat().st_size == video["output"]["bytes"]
    folder = tmp_path / "into"
    assert f"saved {folder / video_id}.mp4" in ok(run(local_stack, "download", video_id, "-o", f"{folder}/"))
    # The spritesheet is derived after the video is stored: a moment later it is there too.
    sheet = folder / f"{video_id}.spritesheet.jpg"
    deadline = time.monotonic() + 30
    while True:
        done = run(local_stack, "download", video_id, "--variant", "spritesheet", "-o", str(folder))
        if done.returncode == 0 or time.monotonic() > deadline:
            break
        assert "not ready" in done.stderr or "pending" in done.stderr, done.stderr
        time.sleep(0.5)
    assert ok(done).startswith(f"saved {sheet}")
    assert sheet.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG

    assert ok(run(local_stack, "delete", video_id)) == f"deleted {video_id} (completed) and its stored MP4\n"
    line = one_line_failure(run(local_stack, "delete", video_id), 1)
    assert (
        line == f"vidrelay delete: not found: No video found with id '{video_id}'. (`vidrelay jobs` lists your videos)"
    )


def test_jobs_lists_created_time_status_model_size_and_cost_in_aligned_columns(local_stack: LocalStackProcess) -> None:
    _, key = new_key(local_stack, f"cli-jobs-{secrets.token_hex(3)}")
    with httpx.Client(base_url=local_stack.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
        sora = api.post("/videos", json={"model": "sora-2", "prompt": "short", "seconds": "4", "size": "1280x720"})
        assert sora.status_code == 200, sora.text
        veo = api.post(
            "/videos",
            data={
                "model": "veo-3.1-fast-generate-preview",
                "prompt": "a long model name",
                "duration": "4",
                "resolution": "720p",
                "aspectRatio": "16:9",
            },
            files={"input_reference": ("ref.png", _png(), "image/png")},
        )
        assert veo.status_code == 200, veo.text
    listed = ok(run(local_stack, "jobs", "--api-key", key)).splitlines()
    header, rows = listed[0], listed[1:]
    assert header.split() == ["ID", "CREATED", "(UTC)", "STATUS", "MODEL", "SIZE", "SECONDS", "COST", "PROMPT"]
    assert [row.split()[0] for row in rows] == [veo.json()["id"], sora.json()["id"]]  # newest first
    for column in ("STATUS", "MODEL", "SIZE", "COST"):
        assert {row[header.index(column) - 1 : header.index(column)] for row in rows} == {" "}
        assert all(row[header.index(column)] != " " for row in rows), (column, rows)
    assert "veo-3.1-fast-generate-preview" in rows[0] and "$0.30" in rows[0] and "$0.40" in rows[1]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows[0])

    first = ok(run(local_stack, "jobs", "--api-key", key, "--limit", "1")).splitlines()
    assert first[1].split()[0] == veo.json()["id"]
    assert first[-1] == f"more: vidrelay jobs --limit 1 --after {veo.json()['id']}"
    second = ok(run(local_stack, "jobs", "--api-key", key, "--limit", "1", "--after", veo.json()["id"])).splitlines()
    assert [line.split()[0] for line in second[1:]] == [sora.json()["id"]]


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (1280, 720), (30, 90, 140)).save(buffer, "PNG")
    return buffer.getvalue()


def test_deliveries_redeliver_and_endpoints(local_stack: LocalStackProcess) -> None:
    receiver = Receiver().start()
    try:
        created = ok(run(local_stack, "endpoints", "create", "--url", receiver.url, "--event-type", "video.completed"))
        secret = created.splitlines()[-1]
        assert secret.startswith("whsec_") and "shown only now" in created
        endpoint_id = re.search(r"we_[0-9a-f]+", created)
        assert endpoint_id
        we = endpoint_id.group(0)
        listed = ok(run(local_stack, "endpoints", "list"))
        assert we in listed and "video.completed" in listed and secret not in listed

        done = ok(run(local_stack, "submit", *TEXT_JOB, "--webhook-url", receiver.url))
        video_id = done.split()[0]
        with local_stack.http() as api:
            wait_for_status(api, video_id, {"completed"})
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                deliveries = api.get(f"/videos/{video_id}/deliveries").json()["data"]
                if len(deliveries) == 4 and all(d["status"] == "succeeded" for d in deliveries):
                    break
                time.sleep(0.3)
        table = ok(run(local_stack, "deliveries", video_id))
        for delivery in deliveries:
            assert re.search(rf"^{delivery['id']}\s+{delivery['event_type']}\s+\S+\s+succeeded\s+1\s", table, re.M)
        assert re.search(rf"^\S+\s+video.completed\s+{we}\s+succeeded", table, re.M)

        completed = next(d for d in deliveries if d["target"] == we)
        line = ok(run(local_stack, "redeliver", video_id, completed["id"]))
        assert line.startswith(f"{completed['id']} (video.completed to endpoint {we}) is due again")
        job = next(d for d in deliveries if d["target"] == "job" and d["event_type"] == "video.queued")
        line = ok(run(local_stack, "redeliver", video_id, job["id"]))
        assert line.startswith(f"{job['id']} (video.queued to {receiver.url}) is due again")
        missing = one_line_failure(run(local_stack, "redeliver", video_id, "dlv_0000"), 1)
        assert missing.startswith("vidrelay redeliver: not found: ")
        assert missing.endswith(f"(`vidrelay deliveries {video_id}` lists its deliveries)")

        rotated = ok(run(local_stack, "endpoints", "rotate", we, "--grace-period-seconds", "60")).splitlines()
        assert "the previous secret also signs until" in rotated[0] and rotated[-1].startswith("whsec_")
        assert rotated[-1] != secret
        tested = ok(run(local_stack, "endpoints", "test", we))
        assert re.fullmatch(rf"webhook_endpoint.test evt_test_\w+ to {we}: HTTP 200 in \d+ ms: delivered\n", tested)

        assert ok(run(local_stack, "endpoints", "delete", we)) == f"deleted {we}\n"
        line = one_line_failure(run(local_stack, "endpoints", "delete", we), 1)
        assert line.startswith("vidrelay endpoints delete: not found: ") and we in line
    finally:
        receiver.stop()


def test_usage_sums_the_tenants_jobs(local_stack: LocalStackProcess) -> None:
    _, key = new_key(local_stack, f"cli-usage-{secrets.token_hex(3)}")
    ok(run(local_stack, "submit", *TEXT_JOB, "--api-key", key))
    ok(run(local_stack, "submit", *TEXT_JOB, "--api-key", key))
    report = ok(run(local_stack, "usage", "--api-key", key)).splitlines()
    assert report[0].split() == ["DAY", "MODEL", "JOBS", "ESTIMATED"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d\s+sora-2\s+2\s+\$0\.80\s*", report[1])
    assert re.fullmatch(r"total\s+\d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d\s+2\s+\$0\.80\s*", report[-1])
    bad = one_line_failure(run(local_stack, "usage", "--api-key", key, "--from", "yesterday"), 1)
    assert bad.startswith("vidrelay usage: invalid request (param: from): ")
