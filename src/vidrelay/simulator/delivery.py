"""Serving a finished task's MP4, with the download faults, for ``/v1/videos/{id}/content`` and the CDN alike."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from werkzeug.wrappers import Response

from vidrelay.simulator import mp4gen
from vidrelay.simulator.faults import CONTENT_FAULT_ORDER
from vidrelay.simulator.tasks import Task
from vidrelay.simulator.web import cut_after, error_response, server_error

NOT_MP4_BODY = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>\n"


def take_content_fault(task: Task, lock: Any) -> str | None:
    """The counted content fault this download meets, if any ("content_500=2" means two failed downloads)."""
    with lock:
        return next((name for name in CONTENT_FAULT_ORDER if task.take_count(name)), None)


def video_response(task: Task, fired: str | None, environ: dict[str, Any]) -> Response:
    if fired == "content_500":
        return server_error()
    if fired == "content_not_mp4":
        return Response(NOT_MP4_BODY, status=200, mimetype="video/mp4")
    # Held open from here on, so the bounded cache may evict the file mid-download without cutting it.
    handle = mp4gen.open_mp4(task.width, task.height, task.seconds, task.scene)
    total = os.fstat(handle.fileno()).st_size
    body: Iterator[bytes] = mp4gen.iter_file(handle)
    if "content_pad" in task.faults:
        try:
            body = mp4gen.iter_padded(handle, int(task.faults["content_pad"]))
            total = int(task.faults["content_pad"])
        except ValueError as exc:
            handle.close()
            return error_response(500, f"simulator: {exc}", type_="server_error", code="bad_fault")
    if fired == "content_reset":
        body = cut_after(body, max(1, total // 3), environ)
    elif fired == "content_truncated":
        body = cut_after(body, max(1, total // 2), None)
    # Content-Length always announces the full size, so a cut body is an error the client can notice.
    response = Response(body, status=200, mimetype="video/mp4", direct_passthrough=True)
    response.call_on_close(handle.close)  # a HEAD, or a client gone before the first chunk, never runs the body
    response.headers["Content-Length"] = str(total)
    response.headers["Content-Disposition"] = f'attachment; filename="{task.id}.mp4"'
    return response
