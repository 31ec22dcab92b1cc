"""Every fault's observable effect on each dialect it applies to, chosen in the prompt (`[sim:NAME=VALUE]`) or
armed per model (`POST /_sim/faults`), and what `/_sim/` records about it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.simulator.support import (
    AUTH,
    KEY,
    LINK,
    VEO,
    chat_body,
    chat_link,
    eventually,
    generations_submit,
    probe_bytes,
    sse_events,
    task,
    veo_submit,
    wait_generation,
    wait_video,
)
from vidrelay.simulator.server import Simulator

DIALECTS = ("videos", "generations", "chat")
SUBMIT_PATHS = {"videos": "/v1/videos", "generations": "/v1/video/generations", "chat": "/v1/chat/completions"}
MODELS = {"videos": VEO, "generations": "seedance-2.0", "chat": "sora_video2"}


def submit(api: httpx.Client, dialect: str, prompt: str) -> httpx.Response:
    if dialect == "videos":
        return veo_submit(api, prompt)
    if dialect == "generations":
        return generations_submit(api, prompt)
    return api.post("/v1/chat/completions", json=chat_body(prompt, stream=False))


def finished(api: httpx.Client, sim: Simulator, dialect: str, prompt: str) -> tuple[str, str, dict[str, str]]:
    """(task id, download URL, headers the download needs) of a completed task."""
    if dialect == "videos":
        # The seed's 400 window is its own fault; kept out of the way of the others here.
        video_id = veo_submit(api, prompt + " [sim:content_400_window=0]").json()["id"]
        assert wait_video(api, video_id)["status"] == "completed"
        return video_id, f"{sim.url}/v1/videos/{video_id}/content", AUTH
    if dialect == "generations":
        task_id = generations_submit(api, prompt, duration="4").json()["task_id"]
        return task_id, wait_generation(api, task_id)["video_url"], {}
    url = chat_link(api, prompt)
    (chat_task,) = [t for t in sim.tasks() if t["video_url"] == url]
    return chat_task["id"], url, {}


def download(url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=30)


# --- submit faults: every dialect -----------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_submit_500_creates_no_task(api: httpx.Client, sim: Simulator, dialect: str) -> None:
    response = submit(api, dialect, "x [sim:submit_500]")

    assert response.status_code == 500 and response.json()["error"]["type"] == "server_error"
    assert sim.tasks() == []
    assert [(r["path"], r["status"], r["dialect"]) for r in sim.requests()] == [(SUBMIT_PATHS[dialect], 500, dialect)]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_submit_429_says_when_to_retry(api: httpx.Client, sim: Simulator, dialect: str) -> None:
    response = submit(api, dialect, "x [sim:submit_429=7]")

    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert sim.tasks() == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_submit_reset_drops_the_connection(api: httpx.Client, sim: Simulator, dialect: str) -> None:
    started = time.monotonic()
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        submit(api, dialect, "x [sim:submit_reset]")
    assert time.monotonic() - started < 5  # dropped, not left hanging until the client gives up

    assert sim.tasks() == []
    assert [r["status"] for r in sim.requests()] == [None]  # no answer was sent


@pytest.mark.parametrize("dialect", DIALECTS)
def test_submit_timeout_holds_the_answer_while_the_task_exists(sim: Simulator, dialect: str) -> None:
    with httpx.Client(base_url=sim.url, headers=AUTH, timeout=0.5) as impatient:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            submit(impatient, dialect, "x [sim:submit_timeout=20]")
    assert time.monotonic() - started < 5
    (held,) = sim.tasks()  # the ambiguous case: the upstream has the task, the client has no answer
    assert held["dialect"] == dialect and held["faults"] == {"submit_timeout": 20.0}


# --- poll and failure faults ------------------------------------------------------------------------------------


def test_poll_500_fails_the_first_polls_of_veo(api: httpx.Client) -> None:
    video_id = veo_submit(api, "x [sim:poll_500=2]").json()["id"]
    codes = [api.get(f"/v1/videos/{video_id}").status_code for _ in range(3)]
    assert codes == [500, 500, 200]


def test_poll_500_fails_the_first_polls_of_generations(api: httpx.Client, sim: Simulator) -> None:
    task_id = generations_submit(api, "x [sim:poll_500=2]").json()["task_id"]
    codes = [api.get(f"/v1/video/generations/{task_id}").status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    assert task(sim, task_id)["poll_requests"] == 3


def test_veo_fail_with_and_without_an_error(api: httpx.Client) -> None:
    failed = wait_video(api, veo_submit(api, "x [sim:fail]").json()["id"])
    silent = wait_video(api, veo_submit(api, "x [sim:fail_no_error]").json()["id"])

    assert failed["status"] == silent["status"] == "failed"
    assert failed["error"]["message"] and "error" not in silent
    assert "completed_at" not in failed
    assert api.get(f"/v1/videos/{failed['id']}/content").status_code == 400


def test_generations_fail_is_the_seeds_failed_answer(api: httpx.Client) -> None:
    failed = wait_generation(api, generations_submit(api, "x [sim:fail]").json()["task_id"])
    silent = wait_generation(api, generations_submit(api, "x [sim:fail_no_error]").json()["task_id"])

    assert set(failed) == {"task_id", "status", "error", "created_at", "updated_at"}
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "GENERATION_FAILED", "message": "Video generation failed"}
    assert silent["status"] == "failed" and "error" not in silent and "video_url" not in silent


def stream(sim: Simulator, prompt: str) -> tuple[list[Any], Exception | None]:
    """The SSE events received before the stream ended, and the error that ended it, if one did."""
    lines: list[str] = []
    try:
        with httpx.stream(
            "POST", f"{sim.url}/v1/chat/completions", json=chat_body(prompt), headers=AUTH, timeout=30
        ) as response:
            for line in response.iter_lines():
                lines.append(line)
    except httpx.TransportError as exc:
        return sse_events(lines), exc
    return sse_events(lines), None


def texts_of(events: list[Any]) -> list[str]:
    return [
        e["choices"][0]["delta"].get("content", "")
        for e in events
        if isinstance(e, dict) and e["choices"] and e["choices"][0]["delta"].get("content")
    ]


@pytest.mark.parametrize("fault", ["stream_fail", "fail"])
def test_chat_failure_ends_the_stream_with_a_message_and_no_link(sim: Simulator, fault: str) -> None:
    events, error = stream(sim, f"x [sim:{fault}]")

    assert error is None and events[-1] == "[DONE]"
    texts = texts_of(events)
    assert "failed" in texts[-1] and not any(LINK.search(t) for t in texts)
    assert events[-3]["choices"][0]["finish_reason"] == "stop"
    (failed,) = sim.tasks()
    assert failed["status"] == "failed" and failed["video_url"] is None


def test_chat_fail_no_error_just_ends_without_a_link(sim: Simulator) -> None:
    events, error = stream(sim, "x [sim:fail_no_error]")
    texts = texts_of(events)
    assert error is None and events[-1] == "[DONE]"
    assert not any(LINK.search(t) or "failed" in t for t in texts)


def test_stream_cut_drops_the_connection_before_the_link(sim: Simulator) -> None:
    events, error = stream(sim, "x [sim:stream_cut]")

    assert isinstance(error, httpx.RemoteProtocolError | httpx.ReadError), error
    assert "[DONE]" not in events
    texts = texts_of(events)
    assert len(texts) == 3  # the default: three progress chunks, then the cut
    assert not any(LINK.search(t) for t in texts)
    cut = sim.tasks()[0]["stream"]
    assert (cut["cut"], cut["finished"], cut["chunks_sent"]) == (True, False, 3)


def test_stream_cut_takes_the_number_of_chunks(sim: Simulator) -> None:
    events, error = stream(sim, "x [sim:stream_cut=1]")
    assert error is not None and len(texts_of(events)) == 1


def test_stream_cut_without_stream_is_no_answer_at_all(api: httpx.Client, sim: Simulator) -> None:
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        api.post("/v1/chat/completions", json=chat_body("x [sim:stream_cut=2]", stream=False))
    assert sim.tasks()[0]["stream"]["cut"] is True


# --- download faults: /content for Veo, the CDN link for the others ----------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_content_500_fails_the_first_downloads(api: httpx.Client, sim: Simulator, dialect: str) -> None:
    task_id, url, headers = finished(api, sim, dialect, "x [sim:content_500=2]")
    codes = [download(url, headers).status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    assert task(sim, task_id)["content_requests"] == 3


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("fault", ["content_reset", "content_truncated"])
def test_a_cut_download_is_an_error_then_the_next_is_whole(
    api: httpx.Client, sim: Simulator, dialect: str, fault: str, tmp_path: Path
) -> None:
    _, url, headers = finished(api, sim, dialect, f"x [sim:{fault}]")

    with pytest.raises(httpx.TransportError):
        download(url, headers)
    whole = download(url, headers)
    assert whole.status_code == 200 and int(whole.headers["Content-Length"]) == len(whole.content)
    assert probe_bytes(whole.content, tmp_path)[2] > 0


@pytest.mark.parametrize("dialect", DIALECTS)
def test_content_not_mp4_serves_an_html_page_once(api: httpx.Client, sim: Simulator, dialect: str) -> None:
    _, url, headers = finished(api, sim, dialect, "x [sim:content_not_mp4]")

    wrong = download(url, headers)
    right = download(url, headers)
    assert wrong.status_code == 200 and wrong.content.startswith(b"<!DOCTYPE html>")
    assert right.content[4:8] == b"ftyp"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_content_pad_serves_exactly_that_many_bytes_of_playable_mp4(
    api: httpx.Client, sim: Simulator, dialect: str, tmp_path: Path
) -> None:
    total = 3 * 1024 * 1024
    _, url, headers = finished(api, sim, dialect, f"x [sim:content_pad={total}]")

    padded = download(url, headers)
    assert len(padded.content) == total == int(padded.headers["Content-Length"])
    width, _, duration = probe_bytes(padded.content, tmp_path)
    assert width > 0 and duration > 0


def test_expire_makes_a_veo_video_404(api: httpx.Client) -> None:
    video_id = veo_submit(api, "x [sim:expire=0]").json()["id"]
    time.sleep(1.0)
    assert api.get(f"/v1/videos/{video_id}").status_code == 404
    assert api.get(f"/v1/videos/{video_id}/content").status_code == 404


@pytest.mark.parametrize("dialect", ["generations", "chat"])
def test_expire_makes_the_cdn_link_403(api: httpx.Client, sim: Simulator, dialect: str) -> None:
    task_id, url, headers = finished(api, sim, dialect, "x [sim:expire=0]")

    refused = download(url, headers)
    assert refused.status_code == 403 and "Request has expired" in refused.text
    assert task(sim, task_id)["expired"] is True


def test_the_veo_400_window_is_a_fault_too(api: httpx.Client, sim: Simulator) -> None:
    none = veo_submit(api, "x [sim:content_400_window=0]").json()["id"]
    long = veo_submit(api, "x [sim:content_400_window=30]").json()["id"]
    wait_video(api, none)
    wait_video(api, long)
    assert api.get(f"/v1/videos/{none}/content").status_code == 200
    blocked = api.get(f"/v1/videos/{long}/content")
    assert blocked.status_code == 400 and "retry" in blocked.json()["error"]["message"]
    assert task(sim, long)["content_400_window"] == 30.0


# --- armed per model, applicability, inspection ---------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_fault_armed_for_a_model_hits_its_next_submits_only(api: httpx.Client, sim: Simulator, dialect: str) -> None:
    armed = httpx.post(
        f"{sim.url}/_sim/faults", json={"model": MODELS[dialect], "fault": "submit_500", "times": 2}
    ).raise_for_status()
    assert armed.json() == [{"model": MODELS[dialect], "fault": "submit_500", "value": None, "times": 2}]

    codes = [submit(api, dialect, "x").status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    assert httpx.get(f"{sim.url}/_sim/faults").json() == []


def test_an_armed_fault_is_kept_for_the_dialect_it_applies_to(api: httpx.Client, sim: Simulator) -> None:
    sim.add_fault("*", "stream_cut", 1, times=1)

    generations_submit(api).raise_for_status()
    veo_submit(api).raise_for_status()
    assert sim.tasks()[0]["faults"] == {} and sim.tasks()[1]["faults"] == {}
    events, error = stream(sim, "x")
    assert error is not None and len(texts_of(events)) == 1


@pytest.mark.parametrize(
    ("dialect", "directive"),
    [("videos", "[sim:stream_cut]"), ("generations", "[sim:content_400_window=9]"), ("chat", "[sim:poll_500=3]")],
)
def test_a_fault_named_for_another_dialect_is_ignored(
    api: httpx.Client, sim: Simulator, dialect: str, directive: str
) -> None:
    submit(api, dialect, f"x {directive}").raise_for_status()
    assert sim.tasks()[0]["faults"] == {}


def test_unknown_faults_are_refused_when_armed(sim: Simulator) -> None:
    response = httpx.post(f"{sim.url}/_sim/faults", json={"model": "*", "fault": "explode"})
    assert response.status_code == 400 and "unknown fault" in response.json()["error"]["message"]


def test_requests_are_logged_per_server_without_the_key(api: httpx.Client, sim: Simulator) -> None:
    for dialect in DIALECTS:
        finished(api, sim, dialect, "x")
    url = next(t for t in sim.tasks() if t["dialect"] == "generations")["video_url"]
    httpx.get(url).raise_for_status()

    logged = httpx.get(f"{sim.url}/_sim/requests").json()
    assert all(
        set(r)
        == {"server", "method", "path", "at_ms", "status", "had_bearer", "had_authorization", "task_id", "dialect"}
        for r in logged
    )
    assert {r["dialect"] for r in logged if r["server"] == "api"} == set(DIALECTS)
    assert [r["had_bearer"] for r in logged if r["server"] == "api"] == [True] * sum(
        r["server"] == "api" for r in logged
    )
    assert any(r["server"] == "cdn" and r["had_authorization"] is False for r in logged)
    inspected = json.dumps(logged) + httpx.get(f"{sim.url}/_sim/tasks").text
    assert KEY not in inspected


def test_config_changes_the_timing_of_new_tasks(sim: Simulator, api: httpx.Client) -> None:
    changed = httpx.post(f"{sim.url}/_sim/config", json={"sim_seconds": 0, "content_400_window": 0}).json()
    assert (changed["sim_seconds"], changed["content_400_window"], changed["cdn_url"]) == (0, 0, sim.cdn_url)

    video_id = veo_submit(api).json()["id"]
    assert api.get(f"/v1/videos/{video_id}/content").status_code == 200


def test_reset_forgets_tasks_requests_and_faults(api: httpx.Client, sim: Simulator) -> None:
    sim.add_fault(VEO, "fail")
    generations_submit(api)
    httpx.post(f"{sim.url}/_sim/reset").raise_for_status()
    assert (sim.tasks(), sim.requests(), httpx.get(f"{sim.url}/_sim/faults").json()) == ([], [], [])


def test_stop_ends_a_running_stream_at_once() -> None:
    slow = Simulator(port=0, sim_seconds=30).start()
    received: list[str] = []

    def read() -> None:
        try:
            with httpx.stream(
                "POST", f"{slow.url}/v1/chat/completions", json=chat_body("x"), headers=AUTH, timeout=30
            ) as response:
                received.extend(response.iter_lines())
        except httpx.TransportError:
            received.append("<error>")

    reader = threading.Thread(target=read)
    reader.start()
    eventually(lambda: True if received else None)
    started = time.monotonic()
    slow.stop()
    reader.join(timeout=10)
    assert not reader.is_alive() and time.monotonic() - started < 5


def test_config_sets_the_latency_held_before_every_api_answer(sim: Simulator, api: httpx.Client) -> None:
    changed = httpx.post(f"{sim.url}/_sim/config", json={"latency_s": 0.2}).json()
    assert changed["latency_s"] == 0.2
    try:
        started = time.monotonic()
        assert api.get("/v1/videos/video_missing").status_code == 404
        assert time.monotonic() - started >= 0.2
        # The control endpoints answer at once.
        started = time.monotonic()
        httpx.get(f"{sim.url}/_sim/config")
        assert time.monotonic() - started < 0.2
    finally:
        httpx.post(f"{sim.url}/_sim/config", json={"latency_s": 0})


@pytest.mark.parametrize("latency", [-1, 61, "0.2", True, None])
def test_a_bad_latency_is_refused_by_name_and_changes_nothing(sim: Simulator, latency: object) -> None:
    answer = httpx.post(f"{sim.url}/_sim/config", json={"latency_s": latency})
    assert answer.status_code == 400
    assert "latency_s" in answer.text
    assert httpx.get(f"{sim.url}/_sim/config").json()["latency_s"] == 0
