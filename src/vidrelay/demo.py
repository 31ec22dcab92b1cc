"""`make demo`: start the local stack, run one job of every seed family through it (sora-2 text- and
image-to-video, Veo 3.1, Seedance 2.0 with two references, the streaming sora_video2), receive and verify their
webhooks, save the MP4s.

Everything it starts it stops; it exits 0 only if the video arrived, is a real MP4 of the asked size and length,
and the signed `video.completed` webhook verified.
"""

from __future__ import annotations

import queue
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidrelay.client import Client, Endpoint
from vidrelay.console import wait_with_progress
from vidrelay.local.stack import LocalOptions, LocalStack
from vidrelay.ports import free_port
from vidrelay.receiver import Receiver


@dataclass(frozen=True)
class DemoJob:
    label: str
    model: str
    prompt: str
    seconds: str
    size: str
    # Reference images to upload, as (field, width x height), in upload order; fitted or checked by the relay.
    images: tuple[tuple[str, tuple[int, int]], ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


JOBS = (
    DemoJob(
        "sora-2 text-to-video",
        "sora-2",
        "A golden retriever running on the beach at sunset, cinematic, golden hour",
        "4",
        "1280x720",
        extra={"seconds": "4", "size": "1280x720"},
    ),
    DemoJob(
        "sora-2 image-to-video",
        "sora-2",
        "Animate this scene: gentle waves lapping, leaves swaying, cinematic camera push-in",
        "4",
        "1280x720",
        # 4:3, so the relay crops it to the 16:9 size sora-2 requires.
        images=(("input_reference", (1600, 1200)),),
        extra={"seconds": "4", "size": "1280x720"},
    ),
    DemoJob(
        "veo-3.1-fast image-to-video",
        "veo-3.1-fast-generate-preview",
        "Camera slowly rises from the base of the lighthouse to the top, dusk lighting, waves lapping the rocks",
        "4",
        "1280x720",
        images=(("input_reference", (1280, 720)),),
        extra={"duration": "4", "resolution": "720p", "aspectRatio": "16:9", "seed": "20260521"},
    ),
    DemoJob(
        "seedance-2.0 with two references",
        "seedance-2.0",
        "@IMG_1 and @IMG_2 walking together on a beach at sunrise",
        "5",
        "1280x720",
        images=(("files", (1280, 720)), ("files", (960, 960))),
        extra={"duration": "5", "aspect_ratio": "16:9"},
    ),
    DemoJob(
        "sora_video2 (streaming)",
        "sora_video2",
        "A paper boat drifting down a rainy street, vertical video",
        "10",
        "704x1280",
    ),
)


def reference_image(path: Path, size: tuple[int, int]) -> Path:
    """A JPEG photo stand-in: a gradient with a horizon, of the given size."""
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        shade = int(255 * y / height)
        draw.line([(0, y), (width, y)], fill=(shade // 3, 120 + shade // 3, 255 - shade // 2))
    draw.rectangle([0, height * 2 // 3, width, height], fill=(30, 90, 140))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=85)
    return path


def probe_mp4(path: Path) -> tuple[int, int, float]:
    """Width, height and duration as a video player reads them (PyAV/FFmpeg), not as our own parser does."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        duration = float(container.duration or 0) / 1_000_000
        return stream.codec_context.width, stream.codec_context.height, duration


def wait_for_event(receiver: Receiver, video_id: str, event_type: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            received = receiver.events.get(timeout=0.2)
        except queue.Empty:
            continue
        if received.event["data"]["id"] == video_id and received.event["type"] == event_type:
            return received
    raise TimeoutError(f"no {event_type} webhook for {video_id} within {timeout_s:.0f} s")


def run(out_dir: Path = Path("out")) -> int:
    stack = LocalStack(LocalOptions(port=free_port(), sim_seconds=3.0))
    info = stack.start()
    receiver = Receiver(secret=info["webhook_secret"]).start()
    print(f"vidrelay local: {info['api_url']}  (moto {info['aws_endpoint_url']}, simulator {info['simulator_url']})")
    print(f"webhook receiver: {receiver.url}\n")
    failures = 0
    try:
        client = Client(Endpoint(info["api_url"], info["api_key"]))
        for job in JOBS:
            files = [
                (name, reference_image(out_dir / "references" / f"{job.model}-{number}.jpg", size))
                for number, (name, size) in enumerate(job.images, start=1)
            ]
            video = client.create(
                model=job.model,
                prompt=job.prompt,
                extra=job.extra,
                files=files,
                webhook_url=receiver.url,
                metadata={"demo": job.label},
            )
            video = wait_with_progress(client, video, label=job.label)
            if video["status"] != "completed":
                print(f"  ✗ {job.label}: {video['status']} {video.get('error')}")
                failures += 1
                continue
            event = wait_for_event(receiver, video["id"], "video.completed")
            path = client.download(video["id"], out_dir / f"{video['id']}.mp4")
            width, height, duration = probe_mp4(path)
            want_w, want_h = (int(v) for v in job.size.split("x"))
            ok = (width, height) == (want_w, want_h) and abs(duration - float(job.seconds)) < 0.5
            failures += 0 if ok and event.verified else 1
            print(
                f"  {'✓' if ok else '✗'} {job.label}: {path} {width}x{height} {duration:.2f} s, "
                f"sha256 {video['output']['sha256'][:12]}…, cost ${video['cost']['estimated_usd']:.2f}"
            )
            print(
                f"    webhook {event.event['type']} id={event.headers['webhook-id']} "
                f"signature {'verified' if event.verified else 'NOT verified'}"
            )
    finally:
        receiver.stop()
        stack.stop()
    print("\ndemo passed" if not failures else f"\ndemo FAILED ({failures} job(s))")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run())
