"""Sora 2 image-to-video (seed 004) through `vidrelay local`: the reference is fitted to the output size, stored
under inputs/, sent upstream as the seed's multipart `input_reference`, and every bad reference is a 400 that
leaves no job, no stored object and no upstream request.
"""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import boto3
import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from tests.e2e.conftest import LocalStackProcess, wait_for_status
from tests.e2e.test_seed_samples import cut_sample, point_at
from vidrelay.simulator.mp4gen import probe

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
SEED_004 = next(SEEDS.glob("004_*.txt"))
SIZE_MISMATCH = "Inpaint image must match the requested width and height"
FLOW_ENDERS = ("break", "continue", "pass", "raise", "return")


def _code(line: str) -> str:
    """The line without its comment (a `#` outside quotes)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[:i].rstrip()
    return line


def restore_indentation(program: str) -> str:
    """Seed 004's page lost the samples' indentation (seed 002's kept it). It is put back from the samples' own
    shape: a line ending in `:` opens a block; `break`, `raise` and the like close the innermost one; a `# Step`
    comment and the final save message are at the top level; lines inside open brackets are continuations. The
    result must compile, and differs from the seed only in leading whitespace."""
    lines = [line.strip() for line in program.strip("\n").split("\n")]
    out: list[str] = []
    depth = brackets = 0
    for number, line in enumerate(lines):
        code = _code(line)
        if brackets > 0:
            out.append("    " * (depth + 1) + line)
        else:
            if line.startswith("# Step") or number == len(lines) - 1:
                depth = 0
            out.append("    " * depth + line)
            if code.endswith(":"):
                depth += 1
            elif code.split("(", 1)[0].split(" ", 1)[0] in FLOW_ENDERS:
                depth = max(0, depth - 1)
        brackets += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
    restored = "\n".join(out) + "\n"
    compile(restored, "seed-004-sample", "exec")
    assert [line.strip() for line in restored.splitlines()] == lines
    return restored


def image_bytes(size: tuple[int, int], fmt: str = "PNG", color: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    image = Image.new("RGB", size, color)
    # A bright square in the middle, so a crop or pad is visible when someone looks at the frame.
    w, h = size
    image.paste((250, 220, 60), (w // 3, h // 3, 2 * w // 3, 2 * h // 3))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def region_mean(frame: np.ndarray, left: float, top: float, right: float, bottom: float) -> np.ndarray:
    """Mean RGB of a region given as shares of the frame's width and height."""
    height, width, _ = frame.shape
    box = frame[int(top * height) : int(bottom * height), int(left * width) : int(right * width)]
    return np.asarray(box.reshape(-1, 3).mean(axis=0))


def assert_colour(found: np.ndarray, expected: tuple[int, int, int], tolerance: int = 30) -> None:
    assert np.abs(found - np.array(expected)).max() <= tolerance, (found.round(), expected)


def job_ids(api: httpx.Client) -> list[str]:
    return [item["id"] for item in api.get("/videos", params={"limit": 100}).raise_for_status().json()["data"]]


def stored_inputs(stack: LocalStackProcess) -> list[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.info["aws_endpoint_url"],
        region_name=stack.info["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    listing = s3.list_objects_v2(Bucket=stack.info["results_bucket"], Prefix="inputs/")
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def refused_submits(stack: LocalStackProcess) -> int:
    return sum(1 for r in stack.sim_requests() if (r["method"], r["path"], r["status"]) == ("POST", "/v1/videos", 500))


def sim_task(stack: LocalStackProcess, prompt: str) -> dict[str, Any]:
    tasks = httpx.get(f"{stack.simulator_url}/_sim/tasks", timeout=10).json()
    (task,) = [t for t in tasks if t["prompt"] == prompt]
    return dict(task)


class ImageServer:
    """A tiny HTTP server on loopback serving fixed answers per path (the local stack allows loopback URLs)."""

    def __init__(self, routes: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        self.routes = routes
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                status, headers, body = server.routes.get(self.path, (404, {}, b"not found"))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def __enter__(self) -> ImageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def sdk(local_stack: LocalStackProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=local_stack.api_url, api_key=local_stack.api_key, max_retries=0)


@pytest.fixture
def unchanged(local_stack: LocalStackProcess) -> Iterator[None]:
    """Asserts, after the test, that no job, stored reference or upstream request appeared."""
    with local_stack.http() as api:
        jobs, inputs, submits = job_ids(api), stored_inputs(local_stack), local_stack.sim_submits()
        yield
        assert job_ids(api) == jobs
    assert stored_inputs(local_stack) == inputs
    assert local_stack.sim_submits() == submits


def test_sdk_image_to_video_fits_a_larger_jpeg_and_saves_the_mp4(
    sdk: openai.OpenAI, local_stack: LocalStackProcess, tmp_path: Path
) -> None:
    reference = tmp_path / "reference.jpg"
    reference.write_bytes(image_bytes((1600, 1200), "JPEG"))
    prompt = "animate the square: slow push-in [e2e i2v sdk]"

    with reference.open("rb") as handle:
        video = sdk.videos.create(model="sora-2", prompt=prompt, seconds="4", size="1280x720", input_reference=handle)
    assert video.status == "queued" and video.size == "1280x720"

    deadline = time.monotonic() + 60
    while video.status not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
        video = sdk.videos.retrieve(video.id)
    assert video.status == "completed", video

    target = tmp_path / "i2v.mp4"
    sdk.videos.download_content(video.id).write_to_file(target)
    assert target.read_bytes()[4:8] == b"ftyp"
    width, height, duration = probe(target)
    assert (width, height) == (1280, 720)
    assert duration == pytest.approx(4.0, abs=0.1)
    # The video shows the reference: the bright square in the middle of the cropped picture, blue around it.
    frame = first_frame(target)
    assert_colour(region_mean(frame, 0.45, 0.35, 0.55, 0.6), (250, 220, 60))
    assert_colour(region_mean(frame, 0.05, 0.1, 0.25, 0.25), (40, 120, 200))

    # The upstream got the seed's multipart upload: one PNG of exactly the requested size.
    sent = sim_task(local_stack, prompt)["input_reference"]
    assert (sent["format"], sent["width"], sent["height"], sent["content_type"]) == ("png", 1280, 720, "image/png")
    assert f"inputs/local/{video.id}/1-input_reference.png" in stored_inputs(local_stack)


def test_image_url_from_a_local_server_is_fetched_and_sent(local_stack: LocalStackProcess) -> None:
    prompt = "a still lake starts to ripple [e2e i2v url]"
    routes = {"/lake.webp": (200, {"Content-Type": "image/webp"}, image_bytes((720, 1280), "WEBP"))}
    with ImageServer(routes) as images, local_stack.http() as api:
        response = api.post(
            "/videos",
            json={
                "model": "sora-2",
                "prompt": prompt,
                "size": "720x1280",
                "fit": "none",
                "input_reference": {"image_url": images.url("/lake.webp")},
            },
        )
        assert response.status_code == 200, response.text
        video = wait_for_status(api, response.json()["id"], {"completed", "failed"})
    assert video["status"] == "completed", video
    assert images.hits == ["/lake.webp"]
    # Already the right size: sent as it came, a WebP.
    sent = sim_task(local_stack, prompt)["input_reference"]
    assert (sent["format"], sent["width"], sent["height"]) == ("webp", 720, 1280)


def test_a_submit_retried_by_the_poller_reads_the_reference_from_s3(local_stack: LocalStackProcess) -> None:
    prompt = "the upstream stumbles once [e2e i2v retry]"
    refused_before = refused_submits(local_stack)
    armed = httpx.post(
        f"{local_stack.simulator_url}/_sim/faults",
        json={"model": "sora-2-pro", "fault": "submit_500", "times": 1},
        timeout=10,
    )
    armed.raise_for_status()
    with local_stack.http() as api:
        response = api.post(
            "/videos",
            data={"model": "sora-2-pro", "prompt": prompt, "seconds": "4", "size": "1792x1024", "fit": "pad"},
            files={"input_reference": ("photo.png", image_bytes((800, 800)), "image/png")},
        )
        assert response.status_code == 200, response.text
        video = response.json()
        assert video["status"] == "queued"
        video = wait_for_status(api, video["id"], {"completed", "failed"})
    assert video["status"] == "completed", video
    # The api's own submit met the 500; the poller's retry (which has only the S3 copy) got it through.
    assert refused_submits(local_stack) == refused_before + 1
    assert video["output"]["width"] == 1792 and video["output"]["height"] == 1024
    sent = sim_task(local_stack, prompt)["input_reference"]
    assert (sent["format"], sent["width"], sent["height"]) == ("png", 1792, 1024)


def test_metadata_address_is_refused_naming_the_field(local_stack: LocalStackProcess, unchanged: None) -> None:
    with local_stack.http() as api:
        response = api.post(
            "/videos",
            json={
                "model": "sora-2",
                "prompt": "x",
                "size": "1280x720",
                "input_reference": {"image_url": "http://169.254.169.254/latest/meta-data"},
            },
        )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "input_reference.image_url"
    assert "169.254.169.254" in error["message"]


def test_a_redirect_to_the_metadata_address_is_refused(local_stack: LocalStackProcess, unchanged: None) -> None:
    routes = {"/moved.png": (302, {"Location": "http://169.254.169.254/latest/meta-data"}, b"")}
    with ImageServer(routes) as images, local_stack.http() as api:
        response = api.post(
            "/videos",
            json={"model": "sora-2", "prompt": "x", "input_reference": {"image_url": images.url("/moved.png")}},
        )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "input_reference.image_url"
    assert "redirect" in error["message"]


def test_fit_none_with_a_wrong_size_is_the_seeds_400(sdk: openai.OpenAI, unchanged: None) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.videos.create(
            model="sora-2",
            prompt="x",
            seconds="4",
            size="1280x720",
            input_reference=("reference.png", image_bytes((1024, 768)), "image/png"),
            extra_body={"fit": "none"},
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == "input_reference"
    assert SIZE_MISMATCH in error["message"]
    assert "1024x768" in error["message"] and "1280x720" in error["message"]


@pytest.mark.parametrize(
    ("upload", "fields", "param", "words"),
    [
        (("reference.png", b"definitely not an image\n" * 20, "image/png"), {}, "input_reference", ["format"]),
        (("reference.gif", b"GIF89a" + b"\0" * 64, "image/gif"), {}, "input_reference", ["GIF"]),
        (("reference.png", image_bytes((1280, 720)), "image/png"), {"fit": "stretch"}, "fit", ["stretch"]),
        (("reference.png", image_bytes((1280, 720)), "image/png"), {"model": "sora-9"}, "model", ["sora-9"]),
    ],
    ids=["text named png", "gif", "unknown fit", "unknown model"],
)
def test_bad_uploads_are_400_and_change_nothing(
    local_stack: LocalStackProcess,
    unchanged: None,
    upload: tuple[str, bytes, str],
    fields: dict[str, str],
    param: str,
    words: list[str],
) -> None:
    with local_stack.http() as api:
        response = api.post(
            "/videos",
            data={"model": "sora-2", "prompt": "x", "size": "1280x720", **fields},
            files={"input_reference": upload},
        )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    for word in words:
        assert word in error["message"], error


@pytest.mark.slow
def test_seed_004_python_samples_run(local_stack: LocalStackProcess, tmp_path: Path) -> None:
    """Both Python samples of seed 004, cut from the document (indentation restored, base URL and key
    changed), with the 1280x720 reference.png they open."""
    text = SEED_004.read_text()
    samples = {
        "raw-requests": restore_indentation(cut_sample(text, "import requests\n")),
        "openai-sdk": restore_indentation(cut_sample(text, "from openai import OpenAI\n")),
    }
    running: dict[str, tuple[subprocess.Popen[str], Path]] = {}
    for name, program in samples.items():
        assert 'open("./reference.png", "rb")' in program and "1280x720" in program
        workdir = tmp_path / name
        workdir.mkdir()
        (workdir / "reference.png").write_bytes(image_bytes((1280, 720)))
        (workdir / "sample.py").write_text(point_at(program, local_stack))
        running[name] = (
            subprocess.Popen(
                [sys.executable, "-W", "ignore::DeprecationWarning", "sample.py"],
                cwd=workdir,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
            workdir,
        )
    for name, (process, workdir) in running.items():
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, f"{name} sample failed:\n{output}"
        assert "Status: completed, progress: 100%" in output, output
        width, height, duration = probe(workdir / "output.mp4")
        assert (width, height) == (1280, 720), name
        assert duration == pytest.approx(8.0, abs=0.1), name
