"""Helpers for the simulator's dialect tests: real images and MP4s, a submit per dialect, waiting on the clock.

Every test talks HTTP to a `Simulator` started in this process on loopback ports, as the relay would.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from PIL import Image

from vidrelay.simulator import mp4gen
from vidrelay.simulator.server import Simulator

KEY = "sk-sim-test-key-never-stored-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
VEO = "veo-3.1-fast-generate-preview"
LINK = re.compile(r"\[[^\]]+\]\((?P<url>https?://[^)\s]+)\)")
T = TypeVar("T")


def image_bytes(size: tuple[int, int] = (320, 180), fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 90, 160)).save(out, format=fmt)
    return out.getvalue()


def mp4_bytes() -> bytes:
    """A real (small) MP4, as a Seedance video reference."""
    return Path(mp4gen.mp4_path(64, 64, 1)).read_bytes()


def eventually(check: Callable[[], T | None], timeout_s: float = 10.0, every_s: float = 0.05) -> T:
    """Poll `check` until it returns something other than None."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(every_s)


def task(sim: Simulator, task_id: str) -> dict[str, Any]:
    (found,) = [t for t in sim.tasks() if t["id"] == task_id]
    return found


def veo_submit(api: httpx.Client, prompt: str = "a lighthouse at dusk", **fields: str) -> httpx.Response:
    data = {"model": VEO, "prompt": prompt, **fields}
    return api.post("/v1/videos", data=data, files={"input_reference": ("l.png", image_bytes(), "image/png")})


def generations_submit(
    api: httpx.Client, prompt: str = "a cat on grass", files: list[tuple[str, Any]] | None = None, **fields: str
) -> httpx.Response:
    parts: list[tuple[str, Any]] = [("model", (None, "seedance-2.0")), ("prompt", (None, prompt))]
    parts += [(name, (None, value)) for name, value in fields.items()]
    return api.post("/v1/video/generations", files=parts + (files or []))


def chat_body(prompt: str, model: str = "sora_video2", stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": stream, **extra}


def sse_events(lines: list[str]) -> list[Any]:
    """The `data:` payloads of an SSE body, JSON-decoded except the closing `[DONE]`."""
    events: list[Any] = []
    for line in lines:
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def wait_generation(api: httpx.Client, task_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = api.get(f"/v1/video/generations/{task_id}").json()
        return body if body["status"] in ("completed", "failed") else None

    return eventually(done, timeout_s)


def wait_video(api: httpx.Client, video_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = api.get(f"/v1/videos/{video_id}").json()
        return body if body["status"] in ("completed", "failed") else None

    return eventually(done, timeout_s)


def chat_link(api: httpx.Client, prompt: str, model: str = "sora_video2") -> str:
    """Runs a non-streamed chat job and returns the CDN link from its Markdown."""
    body = api.post("/v1/chat/completions", json=chat_body(prompt, model, stream=False)).raise_for_status().json()
    match = LINK.search(body["choices"][0]["message"]["content"])
    assert match is not None, body
    return match["url"]


def probe_bytes(data: bytes, tmp_path: Path, name: str = "video.mp4") -> tuple[int, int, float]:
    path = tmp_path / name
    path.write_bytes(data)
    return mp4gen.probe(path)
