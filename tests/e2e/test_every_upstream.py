"""Every seed upstream through `vidrelay local`, over HTTP only: Veo 3.1 (seed 003), Seedance 2.0 (seed 001), the
streaming sora_video2 (seed 000) and sora-2 image-to-video (seed 004) each reach `completed` with a valid MP4 in
S3, and each fault the simulator can inject ends in a clear outcome: retried and completed, or failed with a code
— never stuck, never submitted twice, never two objects in S3.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import LocalStackProcess, wait_for_status
from tests.e2e.test_seed_samples_simulator import SEED_003_REQUESTS_DEPTHS, SEEDS, cut, indent, retarget
from vidrelay.simulator.mp4gen import probe

pytestmark = pytest.mark.e2e

VEO = "veo-3.1-fast-generate-preview"
SUBMIT_PATHS = {"/v1/videos", "/v1/video/generations", "/v1/chat/completions"}


def image(size: tuple[int, int], fmt: str = "PNG", color: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    picture = Image.new("RGB", size, color)
    w, h = size
    picture.paste((250, 220, 60), (w // 3, h // 3, 2 * w // 3, 2 * h // 3))
    out = io.BytesIO()
    picture.save(out, fmt)
    return out.getvalue()


def submits(stack: LocalStackProcess, marker: str) -> list[dict[str, Any]]:
    """The upstream submits of the job whose prompt carries `marker` (found through the simulator's tasks)."""
    tasks = [t for t in httpx.get(f"{stack.simulator_url}/_sim/tasks", timeout=10).json() if marker in t["prompt"]]
    return tasks


def submit_count(stack: LocalStackProcess) -> int:
    return sum(1 for r in stack.sim_requests() if r["method"] == "POST" and r["path"] in SUBMIT_PATHS)


def stored_objects(stack: LocalStackProcess, video_id: str) -> list[str]:
    """The video's MP4s in the results bucket (its thumbnail and spritesheet beside them are not counted)."""
    s3 = stack.aws("s3")
    listing = s3.list_objects_v2(Bucket=stack.info["results_bucket"], Prefix="videos/")
    return [o["Key"] for o in listing.get("Contents", []) if video_id in o["Key"] and o["Key"].endswith(".mp4")]


def check_mp4(stack: LocalStackProcess, video: dict[str, Any], tmp_path: Any) -> tuple[int, int, float]:
    """The object in S3 is the MP4 the video says, and a player reads it."""
    assert video["status"] == "completed", video
    (key,) = stored_objects(stack, video["id"])
    path = tmp_path / f"{video['id']}.mp4"
    stack.aws("s3").download_file(stack.info["results_bucket"], key, str(path))
    width, height, duration = probe(path)
    assert (width, height) == (video["output"]["width"], video["output"]["height"])
    assert video["output"]["s3_uri"].endswith(key)
    return width, height, duration


def create(api: httpx.Client, **kwargs: Any) -> dict[str, Any]:
    response = api.post("/videos", **kwargs)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_veo_with_a_1280x720_png_completes(local_stack: LocalStackProcess, tmp_path: Any) -> None:
    marker = f"[veo {time.time_ns()}]"
    with local_stack.http() as api:
        video = create(
            api,
            data={"model": VEO, "prompt": f"lighthouse at dusk {marker}", "duration": "4", "aspectRatio": "16:9"},
            files={"input_reference": ("lighthouse.png", image((1280, 720)), "image/png")},
        )
        assert video["seconds"] == "4" and video["size"] == "1280x720"
        assert video["cost"]["estimated_usd"] == 0.3
        video = wait_for_status(api, video["id"], {"completed", "failed"})
    assert check_mp4(local_stack, video, tmp_path)[:2] == (1280, 720)
    assert video["options"] == {"resolution": "720p", "aspectRatio": "16:9"}
    (task,) = submits(local_stack, marker)
    assert task["model"] == VEO
    # Seed 003: the length goes as the string "4", in a multipart form with the one input_reference.
    assert (task["params"]["duration"], task["params"]["resolution"], task["params"]["aspectRatio"]) == (
        "4",
        "720p",
        "16:9",
    )


def test_seedance_with_two_images_named_in_the_prompt_completes(local_stack: LocalStackProcess, tmp_path: Any) -> None:
    marker = f"[seedance {time.time_ns()}]"
    first, second = image((1280, 720), "JPEG", (200, 40, 40)), image((800, 800), "PNG", (40, 200, 40))
    with local_stack.http() as api:
        video = create(
            api,
            data={
                "model": "seedance-2.0",
                "prompt": f"@IMG_1 and @IMG_2 walking on a beach {marker}",
                "duration": "5",
                "aspect_ratio": "16:9",
            },
            files=[("files", ("one.jpg", first, "image/jpeg")), ("files", ("two.png", second, "image/png"))],
        )
        assert [r["field"] for r in video["references"]] == ["files", "files"]
        assert [(r["width"], r["height"]) for r in video["references"]] == [(1280, 720), (800, 800)]
        video = wait_for_status(api, video["id"], {"completed", "failed"})
    width, height, duration = check_mp4(local_stack, video, tmp_path)
    assert (width, height) == (1280, 720)
    assert duration == pytest.approx(5.0, abs=0.2)
    (task,) = submits(local_stack, marker)
    assert task["model"] == "seedance-2.0"
    # Seed 001: files in upload order, so @IMG_1 is the first; the video_url fetched without our key.
    assert [(f["field"], f["format"]) for f in task["files"]] == [("files", "jpeg"), ("files", "png")]
    assert task["references"] == {"@IMG_1": 0, "@IMG_2": 1}
    assert [(r["status"], r["had_authorization"]) for r in task["cdn_requests"]] == [(200, False)]


def test_sora_video2_streams_to_completion(local_stack: LocalStackProcess, tmp_path: Any) -> None:
    marker = f"[stream {time.time_ns()}]"
    with local_stack.http() as api:
        video = create(api, json={"model": "sora_video2", "prompt": f"a paper boat on a rainy street {marker}"})
        assert video["status"] == "queued" and video["size"] == "704x1280" and video["seconds"] == "10"
        video = wait_for_status(api, video["id"], {"completed", "failed"}, timeout_s=90)
    width, height, duration = check_mp4(local_stack, video, tmp_path)
    assert (width, height) == (704, 1280)
    assert duration == pytest.approx(10.0, abs=0.2)
    assert video["usage"] and video["usage"]["total_tokens"] > 0
    (task,) = submits(local_stack, marker)
    assert task["model"] == "sora_video2"
    assert task["cdn_requests"] and not task["cdn_authorization_seen"]


def test_the_seed_003_sample_reads_task_id_from_vidrelay(local_stack: LocalStackProcess, tmp_path: Path) -> None:
    """Seed 003's `requests` sample, changed only in base URL, key and its image, runs against vidrelay itself."""
    seed_003 = next(SEEDS.glob("003_*.txt")).read_text()
    program = retarget(
        indent(cut(seed_003, "import requests\n", 'print("Saved: output.mp4")'), SEED_003_REQUESTS_DEPTHS),
        {'"sk-your-api-key"': repr(local_stack.api_key), '"https://api.apiyi.com/v1"': repr(local_stack.api_url)},
    )
    workdir = tmp_path / "003"
    workdir.mkdir()
    (workdir / "lighthouse.png").write_bytes(image((1280, 720)))
    (workdir / "sample.py").write_text(program)
    done = subprocess.run([sys.executable, "sample.py"], cwd=workdir, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Task ID: video_" in done.stdout and "Status: completed, progress: 100%" in done.stdout
    assert probe(workdir / "output.mp4") == (1280, 720, pytest.approx(8.0, abs=0.1))


def test_catalog_errors_name_their_field(local_stack: LocalStackProcess) -> None:
    before = submit_count(local_stack)
    png = ("r.png", image((1280, 720)), "image/png")
    cases = [
        ({"data": {"model": VEO, "prompt": "x", "duration": "5"}, "files": {"input_reference": png}}, "duration"),
        ({"json": {"model": "sora-2", "prompt": "x", "size": "1920x1080"}}, "size"),
        ({"json": {"model": "seedance-2.0", "prompt": "x", "aspect_ratio": "4:3"}}, "aspect_ratio"),
        ({"json": {"model": "sora-9", "prompt": "x"}}, "model"),
        ({"json": {"model": "seedance-2.0", "prompt": "x", "duration": "²"}}, "duration"),
        (
            {"json": {"model": VEO, "prompt": "x", "duration": 8, "input_reference": {"image_url": "https://a/b.png"}}},
            "duration",
        ),
        (
            {
                "data": {"model": "seedance-2.0", "prompt": "x"},
                "files": {"files": ("a.png", b"not an image", "image/png")},
            },
            "files",
        ),
    ]
    with local_stack.http() as api:
        listed = api.get("/videos", params={"limit": 100}).json()["data"]
        for kwargs, param in cases:
            response = api.post("/videos", **kwargs)
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["param"] == param, error
        assert api.get("/videos", params={"limit": 100}).json()["data"] == listed
    assert submit_count(local_stack) == before


def test_a_large_reference_goes_through_an_upload(local_stack: LocalStackProcess) -> None:
    photo = image((1280, 720), "PNG")
    with local_stack.http() as api:
        upload = (
            api.post("/uploads", json={"filename": "big photo.png", "content_type": "image/png", "bytes": len(photo)})
            .raise_for_status()
            .json()
        )
        put = httpx.put(upload["upload_url"], content=photo, headers=upload["headers"], timeout=30)
        assert put.status_code == 200, put.text
        video = create(
            api,
            json={
                "model": VEO,
                "prompt": "from an upload",
                "duration": "4",
                "input_reference": {"image_url": upload["s3_uri"]},
            },
        )
        video = wait_for_status(api, video["id"], {"completed", "failed"})
        assert video["status"] == "completed", video
        # Another tenant's object (or any other bucket) is refused without looking.
        foreign = upload["s3_uri"].replace("/uploads/local/", "/uploads/someone-else/")
        refused = api.post("/videos", json={"model": VEO, "prompt": "x", "input_reference": {"image_url": foreign}})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "input_reference.image_url"
        bad = api.post("/uploads", json={"filename": "a.gif", "content_type": "image/gif", "bytes": 10})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "content_type"


# -- faults: each ends clearly -----------------------------------------------------------------------------------

PNG_720 = image((1280, 720))
REQUESTS: dict[str, dict[str, Any]] = {
    "veo": {"data": {"model": VEO, "duration": "4"}, "files": {"input_reference": ("r.png", PNG_720, "image/png")}},
    "seedance": {"json": {"model": "seedance-2.0", "duration": 4}},
    "chat": {"json": {"model": "sora_video2-landscape"}},
}

# (family, fault directive, final status, error code or None, upstream submits)
PROMPT_FAULTS = [
    ("veo", "poll_500=2", "completed", None, 1),
    ("veo", "fail", "failed", "*", 1),
    ("veo", "fail_no_error", "failed", "upstream_failed", 1),
    ("veo", "content_500=1", "completed", None, 1),
    ("veo", "content_reset=1", "completed", None, 1),
    ("veo", "content_truncated=1", "completed", None, 1),
    ("veo", "content_not_mp4=1", "failed", "upstream_not_mp4", 1),
    ("veo", "expire", "failed", "upstream_expired", 1),
    ("veo", "submit_reset", "failed", "upstream_submit_unknown", 0),
    ("seedance", "poll_500=2", "completed", None, 1),
    ("seedance", "fail", "failed", "GENERATION_FAILED", 1),
    ("seedance", "fail_no_error", "failed", "upstream_failed", 1),
    ("seedance", "content_500=1", "completed", None, 1),
    ("seedance", "content_truncated=1", "completed", None, 1),
    ("seedance", "content_not_mp4=1", "failed", "upstream_not_mp4", 1),
    ("seedance", "submit_reset", "failed", "upstream_submit_unknown", 0),
    ("chat", "stream_cut", "failed", "upstream_stream_interrupted", 1),
    ("chat", "stream_fail", "failed", "upstream_failed", 1),
    ("chat", "content_500=1", "completed", None, 1),
    ("chat", "content_not_mp4=1", "failed", "upstream_not_mp4", 1),
    ("chat", "submit_reset", "failed", "upstream_stream_interrupted", 0),
]


def run_job(stack: LocalStackProcess, family: str, prompt: str) -> dict[str, Any]:
    spec = REQUESTS[family]
    body = "data" if "data" in spec else "json"
    with stack.http() as api:
        kwargs: dict[str, Any] = {body: {**spec[body], "prompt": prompt}}
        if "files" in spec:
            kwargs["files"] = spec["files"]
        video = create(api, **kwargs)
        return wait_for_status(api, video["id"], {"completed", "failed"}, timeout_s=120)


def test_every_prompt_fault_ends_clearly(local_stack: LocalStackProcess) -> None:
    tag = time.time_ns()
    cases = {
        f"{family} {fault} [{tag}-{n}] [sim:{fault}]": (family, fault, status, code, count)
        for n, (family, fault, status, code, count) in enumerate(PROMPT_FAULTS)
    }
    with ThreadPoolExecutor(max_workers=8) as pool:
        finals = dict(zip(cases, pool.map(lambda p: run_job(local_stack, cases[p][0], p), cases), strict=True))
    problems = []
    for prompt, (family, fault, status, code, count) in cases.items():
        video = finals[prompt]
        marker = prompt.split(" [sim:")[0].rsplit(" ", 1)[-1]  # "[<tag>-<n>]", brackets included
        seen = (video["status"], (video.get("error") or {}).get("code"))
        if video["status"] != status or (code not in (None, "*") and seen[1] != code):
            problems.append(f"{family} {fault}: {seen}, wanted {(status, code)}")
        tasks = submits(local_stack, marker)
        if len(tasks) != count:
            problems.append(f"{family} {fault}: {len(tasks)} upstream tasks, wanted {count}")
        if len(stored_objects(local_stack, video["id"])) > (1 if status == "completed" else 0):
            problems.append(f"{family} {fault}: objects {stored_objects(local_stack, video['id'])}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("family", ["veo", "seedance", "chat"])
@pytest.mark.parametrize("fault", ["submit_500", "submit_429"])
def test_a_refused_submit_is_retried_and_completes(local_stack: LocalStackProcess, family: str, fault: str) -> None:
    model = (REQUESTS[family].get("data") or REQUESTS[family]["json"])["model"]
    armed = httpx.post(
        f"{local_stack.simulator_url}/_sim/faults",
        json={"model": model, "fault": fault, "value": 1 if fault == "submit_429" else None, "times": 1},
        timeout=10,
    )
    armed.raise_for_status()
    marker = f"[{family} {fault} {time.time_ns()}]"
    video = run_job(local_stack, family, f"refused once {marker}")
    assert video["status"] == "completed", video
    # The refusal created no task; the retry created exactly one.
    assert len(submits(local_stack, marker)) == 1
    assert len(stored_objects(local_stack, video["id"])) == 1
