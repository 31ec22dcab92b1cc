"""The seeds' own sample programs against `vidrelay simulator`, run as a subprocess, changed only in base URL,
key and local file paths: seed 001's Seedance example, seed 003's Veo `requests` sample, seed 002's and seed 004's
Sora `requests` samples, and two streaming clients for seed 000 (whose page lost its code).

The samples are cut out of the seed documents at test time and run side by side, so the wall time is that of the
slowest (seed 001 sleeps 20 s between polls).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import requests

from tests.e2e.test_image_to_video import image_bytes, restore_indentation
from vidrelay.ports import free_port
from vidrelay.simulator.mp4gen import probe

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
VIDRELAY = Path(sys.executable).with_name("vidrelay")
KEY = "sk-any-key-the-simulator-accepts"
SIM_SECONDS = 2.0
# Seed 003's sample polls every 8 s and then sleeps 4 s before downloading: with 2 s generations its first GET
# /content comes ~12 s after submit, ~10 s after completion. A 12 s window makes that first download the seed's
# "400 right after completed", and the sample's own retry 4 s later (~14 s after completion) the success.
CONTENT_400_WINDOW = 12.0
LINK = re.compile(r"\[[^\]]*\]\((?P<url>https?://[^)\s]+)\)")

# Seed 003's page lost the samples' indentation, and its `requests` sample defeats the rules that restore seed
# 004's (a `with` whose header closes a bracket; a `break` that leaves the retry loop from inside `try`). These
# are its lines' depths, read from the program's meaning; only whitespace changes (asserted).
SEED_003_REQUESTS_DEPTHS = "000000012222222222222221000001112121000123323345212320"


@dataclass
class SimulatorProcess:
    api_url: str  # the seeds' base URL: origin + /v1
    cdn_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def origin(self) -> str:
        return self.api_url.removesuffix("/v1")

    def tasks(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.origin}/_sim/tasks", timeout=10).json())

    def requests(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.origin}/_sim/requests", timeout=10).json())


def _printed(log_path: Path, label: str) -> str | None:
    match = re.search(rf"{label}:\s+(\S+)", log_path.read_text())
    return match[1] if match else None


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    log_path = tmp_path_factory.mktemp("simulator") / "simulator.log"
    port = free_port()
    command = [str(VIDRELAY), "simulator", "--port", str(port), "--sim-seconds", str(SIM_SECONDS)]
    command += ["--content-400-window", str(CONTENT_400_WINDOW)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
    try:
        deadline = time.monotonic() + 30
        while (api_url := _printed(log_path, "API base URL")) is None or _printed(log_path, "CDN") is None:
            assert process.poll() is None, f"vidrelay simulator exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"vidrelay simulator did not start:\n{log_path.read_text()}"
            time.sleep(0.1)
        config = httpx.get(f"{api_url.removesuffix('/v1')}/_sim/config", timeout=10).json()
        assert api_url == f"http://127.0.0.1:{port}/v1"
        assert config["cdn_url"] == _printed(log_path, "CDN") != config["api_url"]
        yield SimulatorProcess(api_url, config["cdn_url"], process, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cut(text: str, first_line: str, last_line: str) -> str:
    """The program from `first_line` to the end of `last_line`, as the seed prints it."""
    start = text.index(first_line)
    end = text.index(last_line, start) + len(last_line)
    return text[start:end] + "\n"


def retarget(program: str, replacements: dict[str, str]) -> str:
    """The program with only these strings replaced; each must be there, and no public host may remain."""
    for old, new in replacements.items():
        assert old in program, f"the sample no longer contains {old!r}"
        program = program.replace(old, new)
    assert "apiyi.com" not in program and "yelinai.com" not in program
    return program


def indent(program: str, depths: str) -> str:
    lines = program.strip("\n").split("\n")
    assert len(lines) == len(depths), "the seed's sample changed: its depth table no longer fits"
    restored = "\n".join("    " * int(depth) + line.strip() for line, depth in zip(lines, depths, strict=True)) + "\n"
    compile(restored, "seed-sample", "exec")
    assert [line.strip() for line in restored.splitlines()] == [line.strip() for line in lines]
    return restored


def start(program: str, workdir: Path, files: dict[str, bytes]) -> subprocess.Popen[str]:
    workdir.mkdir()
    for name, data in files.items():
        (workdir / name).write_bytes(data)
    (workdir / "sample.py").write_text(program)
    return subprocess.Popen(
        [sys.executable, "-W", "ignore::DeprecationWarning", "sample.py"],
        cwd=workdir,
        env={**os.environ, "API_KEY": KEY, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


# --- seed 000: the page lost its code, so these are the two clients it describes ---------------------------


def requests_sse_client(api_url: str, body: dict[str, Any], out: Path) -> str:
    """A plain `requests` SSE reader: collects `choices[0].delta.content` until `[DONE]`, then downloads the
    Markdown link ("Remember to download videos immediately!") without the key."""
    text = ""
    with requests.post(
        f"{api_url}/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, json=body, stream=True, timeout=300
    ) as response:
        response.raise_for_status()
        for raw in response.iter_lines():
            line = raw.decode()
            if not line.startswith("data: "):
                continue
            data = line[len("data: ") :]
            if data == "[DONE]":
                break
            for choice in json.loads(data).get("choices", []):
                text += choice.get("delta", {}).get("content") or ""
    link = LINK.search(text)
    assert link is not None, text
    video = requests.get(link["url"], timeout=120)
    video.raise_for_status()
    out.write_bytes(video.content)
    return text


def openai_sdk_client(api_url: str, messages: list[Any], model: str, out: Path) -> str:
    client = openai.OpenAI(api_key=KEY, base_url=api_url)
    stream = client.chat.completions.create(model=model, messages=messages, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    link = LINK.search(text)
    assert link is not None, text
    out.write_bytes(httpx.get(link["url"], timeout=120).raise_for_status().content)
    return text


def test_the_seed_samples_run_against_the_simulator(simulator: SimulatorProcess, tmp_path: Path) -> None:
    seed_000, seed_001, seed_002, seed_003, seed_004 = (
        next(SEEDS.glob(f"{n:03d}_*.txt")).read_text() for n in range(5)
    )
    apiyi = {'"sk-your-api-key"': repr(KEY), '"https://api.apiyi.com/v1"': repr(simulator.api_url)}
    jpeg = image_bytes((1280, 720), "JPEG")
    png = image_bytes((1280, 720))
    samples = {
        "001 seedance": start(
            retarget(
                cut(seed_001, "import os\nimport time\nimport requests\n", "    time.sleep(20)"),
                {
                    '"https://api.yelinai.com/v1/video/generations"': repr(f"{simulator.api_url}/video/generations"),
                    '"/path/to/image.jpg"': '"image.jpg"',
                },
            ),
            tmp_path / "001",
            {"image.jpg": jpeg},
        ),
        "003 veo": start(
            retarget(
                indent(cut(seed_003, "import requests\n", 'print("Saved: output.mp4")'), SEED_003_REQUESTS_DEPTHS),
                apiyi,
            ),
            tmp_path / "003",
            {"lighthouse.png": png},
        ),
        "002 sora": start(
            retarget(cut(seed_002, "import requests\n", 'print("Saved: output.mp4")'), apiyi), tmp_path / "002", {}
        ),
        "004 sora i2v": start(
            retarget(restore_indentation(cut(seed_004, "import requests\n", 'print("Saved: output.mp4")')), apiyi),
            tmp_path / "004",
            {"reference.png": png},
        ),
    }

    # Seed 000 meanwhile, in this process: a portrait text-to-video over raw SSE, and a landscape
    # image-to-video (Base64 reference) through the openai SDK.
    assert "Streaming Output" in seed_000 and "sora_video2-landscape" in seed_000
    portrait_text = requests_sse_client(
        simulator.api_url,
        {"model": "sora_video2", "messages": [{"role": "user", "content": "a cat in a garden"}], "stream": True},
        tmp_path / "000-portrait.mp4",
    )
    reference = "data:image/png;base64," + base64.b64encode(image_bytes((1280, 704))).decode()
    landscape_text = openai_sdk_client(
        simulator.api_url,
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "the lighthouse beam sweeps the sea"},
                    {"type": "image_url", "image_url": {"url": reference}},
                ],
            }
        ],
        "sora_video2-landscape",
        tmp_path / "000-landscape.mp4",
    )
    assert "Progress:" in portrait_text and "Progress:" in landscape_text
    assert probe(tmp_path / "000-portrait.mp4") == (704, 1280, pytest.approx(10.0, abs=0.1))
    assert probe(tmp_path / "000-landscape.mp4") == (1280, 704, pytest.approx(10.0, abs=0.1))

    outputs = {}
    for name, process in samples.items():
        output, _ = process.communicate(timeout=90)
        assert process.returncode == 0, f"seed {name} sample failed:\n{output}"
        outputs[name] = output

    # Seed 001 saves f"{task_id}.mp4": five seconds of 16:9, fetched from the CDN without the key.
    (saved,) = (tmp_path / "001").glob("task-*.mp4")
    assert probe(saved) == (1280, 720, pytest.approx(5.0, abs=0.1))
    (seedance,) = [t for t in simulator.tasks() if t["id"] == saved.stem]
    assert seedance["params"]["duration"] == "5"
    (upload,) = seedance["files"]
    assert (upload["field"], upload["filename"], upload["kind"], upload["format"]) == (
        "files",
        "image.jpg",
        "image",
        "jpeg",
    )
    assert seedance["references"] == {"@IMG_1": 0}
    assert [(r["status"], r["had_authorization"]) for r in seedance["cdn_requests"]] == [(200, False)]

    # Seed 003: eight seconds of 1280x720, after one 400 from /content that the sample's retry absorbed.
    assert "Saved: output.mp4" in outputs["003 veo"]
    assert probe(tmp_path / "003" / "output.mp4") == (1280, 720, pytest.approx(8.0, abs=0.1))
    (veo,) = [t for t in simulator.tasks() if t["model"] == "veo-3.1-fast-generate-preview"]
    assert (veo["params"]["duration"], veo["params"]["seed"]) == ("8", "20260521")
    downloads = [r["status"] for r in simulator.requests() if r["path"] == f"/v1/videos/{veo['id']}/content"]
    assert downloads == [400, 200], downloads

    for name in ("002 sora", "004 sora i2v"):
        assert "Status: completed, progress: 100%" in outputs[name], outputs[name]
        assert probe(tmp_path / name[:3] / "output.mp4") == (1280, 720, pytest.approx(8.0, abs=0.1))

    # The streaming clients' links were fetched without the key, as the CDN demands.
    chat_downloads = [t for t in simulator.tasks() if t["dialect"] == "chat"]
    assert len(chat_downloads) == 2
    assert all(t["cdn_requests"] and not t["cdn_authorization_seen"] for t in chat_downloads)
    assert KEY not in json.dumps(simulator.requests()) + json.dumps(simulator.tasks())
