"""sora_video2 over `/v1/chat/completions`, as seed 000 documents it: an SSE stream of chat.completion.chunk
objects whose content reports progress and ends in a Markdown link to the MP4, then `finish_reason: "stop"`,
`usage` and `[DONE]`; the same text in one `chat.completion` without `stream`."""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.unit.simulator.conftest import SIM_SECONDS
from tests.unit.simulator.support import AUTH, KEY, LINK, chat_body, image_bytes, probe_bytes, sse_events, task
from vidrelay.simulator.server import Simulator


def stream_lines(sim: Simulator, body: dict[str, Any]) -> list[tuple[float, str]]:
    """(seconds since the request, line) of every non-empty line of the streamed answer."""
    started = time.monotonic()
    out: list[tuple[float, str]] = []
    with httpx.stream("POST", f"{sim.url}/v1/chat/completions", json=body, headers=AUTH, timeout=30) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line:
                out.append((time.monotonic() - started, line))
    return out


def contents(events: list[Any]) -> list[str]:
    return [
        e["choices"][0]["delta"]["content"]
        for e in events
        if isinstance(e, dict) and e["choices"] and "content" in e["choices"][0]["delta"]
    ]


def test_the_stream_is_the_seeds_chunks_in_the_seeds_order(sim: Simulator) -> None:
    events = sse_events([line for _, line in stream_lines(sim, chat_body("a cat in a garden"))])

    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1 and re.fullmatch(r"chatcmpl-[A-Za-z0-9]+", ids.pop())
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "sora_video2" for c in chunks)
    assert all(isinstance(c["created"], int) for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    texts = contents(chunks)
    percents = [int(m) for t in texts for m in re.findall(r"Progress: (\d+)%", t)]
    assert len(percents) >= 3 and percents == sorted(percents)
    assert LINK.fullmatch(texts[-1]), texts[-1]  # the last content is the Markdown link
    assert not any(LINK.search(t) for t in texts[:-1])
    stop, usage = chunks[-2], chunks[-1]
    assert stop["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])
    assert usage["choices"] == []
    tokens = usage["usage"]
    assert tokens["total_tokens"] == tokens["prompt_tokens"] + tokens["completion_tokens"] > 0


def test_chunks_arrive_as_they_are_made_not_in_one_body(sim: Simulator) -> None:
    sim.sim_seconds = 2.0  # room between the first and the last chunk even on a loaded machine
    lines = stream_lines(sim, chat_body("a cat"))

    first, last = lines[0][0], lines[-1][0]
    assert first < sim.sim_seconds / 3, "the first chunk came only with the rest"
    assert last >= sim.sim_seconds * 0.9
    assert len({round(at, 2) for at, _ in lines}) >= 4  # several distinct arrival moments


@pytest.mark.parametrize(("model", "size"), [("sora_video2", (704, 1280)), ("sora_video2-landscape", (1280, 704))])
def test_the_link_downloads_ten_seconds_of_the_models_size_without_a_key(
    sim: Simulator, tmp_path: Path, model: str, size: tuple[int, int]
) -> None:
    texts = contents(sse_events([line for _, line in stream_lines(sim, chat_body("waves", model))]))
    match = LINK.search(texts[-1])
    assert match is not None
    url = match["url"]
    assert url.startswith(f"{sim.cdn_url}/files/") and "Expires=" in url and "Signature=" in url

    assert httpx.get(url, headers=AUTH).status_code == 400  # the CDN link is its own authentication
    download = httpx.get(url)
    assert download.status_code == 200
    assert probe_bytes(download.content, tmp_path) == (*size, pytest.approx(10.0, abs=0.1))


def test_without_stream_one_completion_comes_at_the_end(api: httpx.Client, sim: Simulator) -> None:
    started = time.monotonic()
    body = api.post("/v1/chat/completions", json=chat_body("a cat", stream=False)).raise_for_status().json()

    assert time.monotonic() - started >= SIM_SECONDS * 0.9
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert "Progress:" in choice["message"]["content"]
    link = LINK.search(choice["message"]["content"])
    assert link is not None and link["url"] == task(sim, body["id"])["video_url"]
    assert body["usage"]["total_tokens"] > 0


def test_the_openai_sdk_streams_it(sim: Simulator) -> None:
    client = openai.OpenAI(api_key=KEY, base_url=f"{sim.url}/v1", max_retries=0)
    stream = client.chat.completions.create(
        model="sora_video2-landscape", messages=[{"role": "user", "content": "a fox"}], stream=True
    )
    text = ""
    finish = None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
    assert finish == "stop"
    assert LINK.search(text)


def test_unknown_model_is_the_openai_error_shape(api: httpx.Client) -> None:
    response = api.post("/v1/chat/completions", json=chat_body("x", model="sora_video3"))

    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "model", "model_not_found")
    assert "sora_video3" in error["message"]


def image_message(*urls: str, text: str = "animate this") -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return {"model": "sora_video2", "messages": [{"role": "user", "content": parts}], "stream": True}


def test_a_base64_reference_is_decoded_and_sniffed(sim: Simulator, api: httpx.Client) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(image_bytes((704, 1280))).decode()
    lines = stream_lines(sim, image_message(data_url))
    chat_id = sse_events([lines[0][1]])[0]["id"]

    recorded = task(sim, chat_id)
    (reference,) = recorded["files"]
    assert (reference["source"], reference["kind"], reference["format"]) == ("base64", "image", "png")
    assert (reference["width"], reference["height"], reference["content_type"]) == (704, 1280, "image/png")
    assert recorded["prompt"] == "animate this"
    # The Base64 payload is not kept in the recorded request.
    assert "base64 characters" in str(recorded["params"]["messages"])


def test_a_remote_url_is_recorded_not_fetched(sim: Simulator) -> None:
    lines = stream_lines(sim, image_message("https://images.example.com/cat.png"))
    (reference,) = task(sim, sse_events([lines[0][1]])[0]["id"])["files"]
    assert reference == {
        "field": "messages[0].content[1].image_url.url",
        "source": "url",
        "url": "https://images.example.com/cat.png",
        "fetched": False,
        "kind": None,
        "bytes": None,
    }


@pytest.fixture
def loopback_image() -> Iterator[str]:
    png = image_bytes((100, 50))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = (200, png) if self.path == "/cat.png" else (404, b"no")
            self.send_response(status)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_loopback_url_is_fetched_and_sniffed(sim: Simulator, api: httpx.Client, loopback_image: str) -> None:
    lines = stream_lines(sim, image_message(f"{loopback_image}/cat.png"))
    (reference,) = task(sim, sse_events([lines[0][1]])[0]["id"])["files"]
    assert (reference["fetched"], reference["format"], reference["width"], reference["height"]) == (
        True,
        "png",
        100,
        50,
    )

    missing = api.post("/v1/chat/completions", json=image_message(f"{loopback_image}/gone.png"))
    assert missing.status_code == 400 and "HTTP 404" in missing.json()["error"]["message"]


@pytest.mark.parametrize(
    ("urls", "words"),
    [
        (["https://a.example/1.png", "https://a.example/2.png"], "At most 1"),
        (["data:image/png;base64," + base64.b64encode(b"plain text, not a picture").decode()], "not a JPEG"),
        (["data:image/png;base64,!!!not-base64!!!"], "Base64"),
        (["ftp://a.example/1.png"], "http(s)"),
    ],
    ids=["two images", "text as png", "bad base64", "ftp"],
)
def test_bad_references_are_400(api: httpx.Client, sim: Simulator, urls: list[str], words: str) -> None:
    response = api.post("/v1/chat/completions", json=image_message(*urls))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert words in error["message"] and error["param"].startswith("messages[0].content[")
    assert sim.tasks() == []


def test_messages_must_carry_a_user_prompt(api: httpx.Client) -> None:
    body = {"model": "sora_video2", "messages": [{"role": "system", "content": "be nice"}], "stream": True}
    assert api.post("/v1/chat/completions", json=body).status_code == 400
    assert api.post("/v1/chat/completions", json={"model": "sora_video2", "messages": []}).status_code == 400


def test_the_key_is_required(sim: Simulator) -> None:
    response = httpx.post(f"{sim.url}/v1/chat/completions", json=chat_body("x"))
    assert response.status_code == 401
