"""What the chaos run checks once every job is terminal: each one a counter that must be zero, with the ids behind
it in `details`."""

from __future__ import annotations

import hashlib
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .clients import TERMINAL, Api, Created
from .receiver import Request

SETTLED = ("succeeded", "failed")


@dataclass
class Findings:
    counters: Counter[str] = field(default_factory=Counter)
    details: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))

    def add(self, counter: str, detail: Any, count: int = 1) -> None:
        self.counters[counter] += count
        if len(self.details[counter]) < 20:  # enough to reproduce; the counter has the total
            self.details[counter].append(detail)


def check_outcomes(created: list[Created], final: dict[str, dict[str, Any]], found: Findings) -> None:
    """Every job terminal, as its plan expects (persistent faults: `failed` with their code)."""
    for item in created:
        if item.video is None:
            found.add("creates_unanswered", {"job": item.job.number, "error": item.error})
            continue
        video_id = item.video["id"]
        for replayed in item.replay_ids:
            if replayed != video_id:
                found.add("replay_mismatches", {"video": video_id, "replay_answered": replayed})
        video = final.get(video_id)
        if video is None or video.get("status") not in TERMINAL:
            found.add("lost", {"video": video_id, "last_seen": (video or {}).get("status")})
            continue
        fault = item.job.fault
        code = (video.get("error") or {}).get("code")
        if video["status"] != fault.outcome or (fault.error_codes and code not in fault.error_codes):
            found.add(
                "unexpected_outcomes",
                {
                    "video": video_id,
                    "model": item.job.model.id,
                    "fault": fault.name,
                    "expected": [fault.outcome, *fault.error_codes],
                    "got": [video["status"], code, (video.get("error") or {}).get("message")],
                },
            )


def check_submissions(created: list[Created], tasks: list[dict[str, Any]], found: Findings) -> None:
    """One upstream task per job at most: the simulator's tasks, found by each job's marker."""
    per_marker: Counter[str] = Counter()
    for task in tasks:
        for item in created:
            if item.job.marker in str(task.get("prompt", "")):
                per_marker[item.job.marker] += 1
                break
    for item in created:
        extra = per_marker[item.job.marker] - 1
        if extra > 0:
            found.add("double_submissions", {"job": item.job.number, "tasks": extra + 1}, extra)


def check_objects(api: Api, final: dict[str, dict[str, Any]], keys: list[str], found: Findings) -> dict[str, int]:
    """The results bucket holds exactly one MP4 per completed job (none for the others), the one its Video
    object describes: same size and SHA-256, and an MP4 a player opens with the video's width and height. Its
    thumbnail and spritesheet (`<id>.thumbnail.webp`, `<id>.spritesheet.jpg`) may stand beside it, once each."""
    by_video: dict[str, list[str]] = defaultdict(list)
    all_by_video: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        video_id, _, kind = Path(key).name.partition(".")
        all_by_video[video_id].append(key)
        if kind == "mp4":
            by_video[video_id].append(key)
    completed = {video_id for video_id, video in final.items() if video.get("status") == "completed"}
    for video_id, owned in all_by_video.items():
        if video_id not in completed:
            found.add("s3_stray_objects", {"video": video_id, "keys": owned}, len(owned))
    for video_id, owned in by_video.items():
        if video_id in completed and len(owned) > 1:
            found.add("s3_duplicate_objects", {"video": video_id, "keys": owned}, len(owned) - 1)
    checked = 0
    with tempfile.TemporaryDirectory(prefix="vidrelay-chaos-") as workdir:
        for video_id in sorted(completed):
            if video_id not in by_video:
                found.add("s3_missing_objects", {"video": video_id})
                continue
            problem = _object_problem(api, final[video_id], Path(workdir) / f"{video_id}.mp4")
            checked += 1
            if problem:
                found.add("s3_mismatching_objects", {"video": video_id, "problem": problem})
    return {"objects": len(keys), "checked": checked}


def _object_problem(api: Api, video: dict[str, Any], path: Path) -> str | None:
    output = video.get("output") or {}
    response = api.call("GET", f"/videos/{video['id']}/content")
    if response.status_code != 302:
        return f"GET content answered {response.status_code}"
    body = httpx.get(response.headers["location"], timeout=60)
    if body.status_code != 200:
        return f"the presigned URL answered {body.status_code}"
    path.write_bytes(body.content)
    if len(body.content) != output.get("bytes"):
        return f"{len(body.content)} bytes stored, {output.get('bytes')} in the Video object"
    if hashlib.sha256(body.content).hexdigest() != output.get("sha256"):
        return "the stored bytes' SHA-256 is not the Video object's"
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            size = (stream.codec_context.width, stream.codec_context.height)
            next(container.decode(video=0))  # a frame decodes: playable, not just a valid header
    except Exception as exc:
        return f"not playable: {type(exc).__name__}: {exc}"
    if size != (output.get("width"), output.get("height")):
        return f"the MP4 is {size[0]}x{size[1]}, the Video object says {output.get('width')}x{output.get('height')}"
    return None


def check_terminal_events(
    final: dict[str, dict[str, Any]], received: dict[str, list[Request]], found: Findings
) -> None:
    """Each terminal job's event reached the receiver with a 2xx, under one webhook-id (its event id) on every
    attempt, and no event was accepted twice."""
    by_video: dict[str, list[Request]] = defaultdict(list)
    for webhook_id, requests in received.items():
        for request in requests:
            by_video[request.video_id].append(request)
            if request.webhook_id != request.event_id:
                found.add("unstable_webhook_ids", {"webhook_id": webhook_id, "event_id": request.event_id})
        accepted = sum(1 for r in requests if r.answer is not None and 200 <= r.answer < 300)
        if accepted > 1:
            found.add("duplicate_deliveries", {"webhook_id": webhook_id, "accepted": accepted}, accepted - 1)
    for video_id, video in final.items():
        if video.get("status") not in TERMINAL:
            continue
        wanted = f"video.{video['status']}"
        terminal = [r for r in by_video.get(video_id, []) if r.event_type == wanted]
        ids = {r.webhook_id for r in terminal}
        delivered = any(r.answer is not None and 200 <= r.answer < 300 for r in terminal)
        if len(ids) != 1 or not delivered:
            found.add(
                "terminal_events_not_delivered",
                {"video": video_id, "event": wanted, "webhook_ids": sorted(ids), "requests": len(terminal)},
            )


def fetch_deliveries(api: Api, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    listed: dict[str, list[dict[str, Any]]] = {}
    for video_id in ids:
        response = api.call("GET", f"/videos/{video_id}/deliveries")
        if response.status_code == 200:
            listed[video_id] = list(response.json()["data"])
    return listed


def unsettled(deliveries: dict[str, list[dict[str, Any]]]) -> int:
    return sum(1 for listed in deliveries.values() for d in listed if d["status"] not in SETTLED)


def check_ledger(
    deliveries: dict[str, list[dict[str, Any]]], received: dict[str, list[Request]], found: Findings
) -> int:
    """The delivery ledger says exactly what the receiver saw: one attempt per request, each with the status the
    receiver answered (none for a dropped connection), `succeeded` exactly when it answered a 2xx."""
    compared = 0
    ledgered: set[str] = set()
    for video_id, listed in deliveries.items():
        for delivery in listed:
            if delivery["target"] != "job":
                continue
            compared += 1
            ledgered.add(delivery["event_id"])
            seen = received.get(delivery["event_id"], [])
            answers = [r.answer for r in seen]
            recorded = [a["status"] for a in delivery["attempts"]]
            accepted = any(a is not None and 200 <= a < 300 for a in answers)
            problem = None
            if delivery["status"] not in SETTLED:
                problem = f"still {delivery['status']} at the end"
            elif recorded != answers:
                problem = "attempts differ"
            elif delivery["attempt_count"] != len(seen):
                problem = f"attempt_count {delivery['attempt_count']}, {len(seen)} requests received"
            elif (delivery["status"] == "succeeded") != accepted:
                problem = f"{delivery['status']}, the receiver {'accepted' if accepted else 'never accepted'} it"
            if problem:
                found.add(
                    "ledger_disagreements",
                    {
                        "video": video_id,
                        "event": delivery["event_type"],
                        "delivery": delivery["id"],
                        "problem": problem,
                        "ledger": recorded,
                        "receiver": answers,
                    },
                )
    for webhook_id, seen in received.items():
        if webhook_id not in ledgered and seen and seen[0].video_id in deliveries:
            found.add("ledger_disagreements", {"webhook_id": webhook_id, "problem": "received, not in the ledger"})
    return compared
