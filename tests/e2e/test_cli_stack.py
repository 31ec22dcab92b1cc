"""`vidrelay local` cleans up after itself and is quiet by default; the CLI tells a stopped or unreachable stack
from a running one, quickly, in one line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import wait_for_status
from vidrelay.ports import free_port

pytestmark = pytest.mark.e2e

VIDRELAY = Path(sys.executable).with_name("vidrelay")
JOB = ("--model", "sora-2", "--prompt", "a quiet console", "--seconds", "4", "--size", "1280x720")


def _env(**extra: str) -> dict[str, str]:
    # As a user's shell: no test logging overrides, no API settings, no AWS endpoint of another stack.
    dropped = ("POWERTOOLS_LOG_LEVEL", "VIDRELAY_API_URL", "VIDRELAY_API_KEY", "AWS_ENDPOINT_URL")
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, "PYTHONUNBUFFERED": "1", **extra}


def _start(workdir: Path, *options: str) -> tuple[subprocess.Popen[bytes], Path, dict[str, object]]:
    log = workdir / "local.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(VIDRELAY), "local", "--port", str(free_port()), "--sim-seconds", "1", *options],
            cwd=workdir,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    state = workdir / ".vidrelay" / "local.json"
    deadline = time.monotonic() + 90
    while not state.exists():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    return process, log, json.loads(state.read_text())


def _cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VIDRELAY), *args], cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=90)


def _one_line(done: subprocess.CompletedProcess[str], exit_code: int = 1) -> str:
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    assert done.returncode == exit_code, (done.returncode, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals, log: Path) -> int:
    process.send_signal(sig)
    try:
        exit_code = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"no stop within 60 s; the console's end:\n{log.read_text()[-20000:]}") from None
    # A stop that outlived the grace ends with 1 and every thread's stack: show it.
    assert exit_code == 0, f"exit code {exit_code}; the console's end:\n{log.read_text()[-20000:]}"
    return exit_code


def test_ctrl_c_removes_the_state_file_and_the_console_shows_one_line_per_job_step(tmp_path: Path) -> None:
    # Given `vidrelay local` as a user starts it
    process, log, info = _start(tmp_path)
    try:
        assert info["pid"] == process.pid
        # When a job runs, submitted from a folder deep inside the stack's
        inside = tmp_path / "src" / "pkg"
        inside.mkdir(parents=True)
        done = _cli(inside, "submit", *JOB, "--wait", "--out", str(tmp_path / "out"))
        assert done.returncode == 0, done.stderr
        video_id = done.stdout.split()[0]
        deadline = time.monotonic() + 10
        while "→ completed" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        exit_code = _stop(process, signal.SIGINT, log)
    # Then Ctrl-C is a clean stop that removes the state file
    assert exit_code == 0
    assert not (tmp_path / ".vidrelay" / "local.json").exists()
    # and the console showed each step of the job in words, and no JSON
    lines = log.read_text().splitlines()
    steps = [line.split("  ", 1)[1] for line in lines if video_id in line]
    assert steps[0] == f"{video_id}  sora-2  queued"
    assert re.fullmatch(rf"{video_id}  sora-2  queued → in_progress \d+%", steps[1]), steps
    assert steps[-1] == f"{video_id}  sora-2  in_progress → completed 1280x720 4.0s", steps
    assert not [line for line in lines if line.lstrip().startswith("{")], "JSON on the console"
    assert lines[-2:] == ["stopping…", "stopped"]

    # And afterwards a command says there is no stack, instead of trying to reach it
    line = _one_line(_cli(inside, "jobs"))
    assert line == (
        "vidrelay jobs: no vidrelay API found: start the local stack with `make local`, or pass --api-url and "
        "--api-key (or set VIDRELAY_API_URL and VIDRELAY_API_KEY)"
    )
    line = _one_line(_cli(inside, "keys", "list"))
    assert line.startswith("vidrelay keys list: no local stack found (no .vidrelay/local.json here or above)")


def test_sigterm_removes_the_state_file_and_verbose_brings_back_powertools_json(tmp_path: Path) -> None:
    process, log, info = _start(tmp_path, "--verbose")
    try:
        headers = {"Authorization": f"Bearer {info['api_key']}"}
        with httpx.Client(base_url=str(info["api_url"]), headers=headers, timeout=30) as api:
            body = {"model": "sora-2", "prompt": "a verbose console", "seconds": "4", "size": "1280x720"}
            video = api.post("/videos", json=body).raise_for_status().json()
            wait_for_status(api, video["id"], {"completed"})
        time.sleep(1.0)
    finally:
        exit_code = _stop(process, signal.SIGTERM, log)
    assert exit_code == 0
    assert not (tmp_path / ".vidrelay" / "local.json").exists()
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(r.get("level") == "INFO" and r.get("service") == "vidrelay" for r in records), "no JSON logs"
    assert any("_aws" in r for r in records), "no EMF metrics"


def test_a_stack_that_died_without_cleaning_up_is_reported_not_running_at_once(tmp_path: Path) -> None:
    # Given the state file of a stack process that no longer exists (killed: it could not remove its file)
    gone = subprocess.Popen(["true"])
    gone.wait()
    port = free_port()
    state = {
        "api_url": f"http://127.0.0.1:{port}/v1",
        "api_key": "sk-local-vidrelay",
        "tenant": "local",
        "aws_endpoint_url": f"http://127.0.0.1:{free_port()}",
        "region": "us-east-1",
        "jobs_table": "vidrelay-local-JobsTable",
        "pid": gone.pid,
    }
    (tmp_path / ".vidrelay").mkdir()
    (tmp_path / ".vidrelay" / "local.json").write_text(json.dumps(state))
    stale = f"the local stack at http://127.0.0.1:{port}/v1 is not running ({tmp_path}/.vidrelay/local.json is stale)"
    # When any command runs, then it says so in one line, without trying to connect
    for command, label in ((("jobs",), "jobs"), (("keys", "list"), "keys list"), (("get", "video_1"), "get")):
        started = time.monotonic()
        line = _one_line(_cli(tmp_path, *command))
        assert line == f"vidrelay {label}: {stale}; start it with `make local`"
        assert time.monotonic() - started < 10

    # Given a state file whose process lives on but whose endpoints are gone (a reused pid, a half-stopped stack)
    state["pid"] = os.getpid()
    (tmp_path / ".vidrelay" / "local.json").write_text(json.dumps(state))
    # Then the key store fails fast (no botocore retries) and the API too
    started = time.monotonic()
    line = _one_line(_cli(tmp_path, "keys", "list"))
    assert time.monotonic() - started < 10
    assert line.startswith(f"vidrelay keys list: the local stack at http://127.0.0.1:{port}/v1 is not running")
    assert "does not answer); start it with `make local`" in line
    line = _one_line(_cli(tmp_path, "jobs"))
    assert line == (
        f"vidrelay jobs: the local stack at http://127.0.0.1:{port}/v1 is not running (connection refused); "
        "start it with `make local`"
    )


def test_an_unreachable_api_url_and_missing_aws_credentials_are_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    line = _one_line(_cli(tmp_path, "jobs", VIDRELAY_API_URL=url, VIDRELAY_API_KEY="sk-x"))
    assert line == f"vidrelay jobs: cannot reach the vidrelay API at {url} (connection refused): check VIDRELAY_API_URL"

    no_credentials = {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SESSION_TOKEN": "",
        "AWS_PROFILE": "",
    }
    env = {k: v for k, v in _env().items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [str(VIDRELAY), "keys", "--stack", "vidrelay", "list"],
        cwd=tmp_path,
        env={**env, **{k: v for k, v in no_credentials.items() if v}},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert _one_line(done).startswith("vidrelay keys list: no AWS credentials found: configure them (`aws configure`")


def test_debug_shows_the_traceback_and_still_the_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    done = _cli(tmp_path, "jobs", "--debug", VIDRELAY_API_URL=url, VIDRELAY_API_KEY="sk-x")
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr and "httpx.ConnectError" in done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"vidrelay jobs: cannot reach the vidrelay API at {url}")
