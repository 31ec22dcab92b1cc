"""A small vidrelay API client for the CLI and the demo (the OpenAI SDK works too; this avoids its import
cost and shows progress)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


@dataclass(frozen=True)
class Endpoint:
    api_url: str
    api_key: str

    @classmethod
    def discover(
        cls,
        api_url: str | None = None,
        api_key: str | None = None,
        state_file: Path = Path(".vidrelay/local.json"),
    ) -> Endpoint:
        """Explicit values first, then VIDRELAY_API_URL / VIDRELAY_API_KEY, then the running local stack."""
        import os

        local: dict[str, Any] = {}
        if state_file.exists():
            local = json.loads(state_file.read_text())
        url = api_url or os.environ.get("VIDRELAY_API_URL") or local.get("api_url")
        key = api_key or os.environ.get("VIDRELAY_API_KEY") or local.get("api_key")
        if not url or not key:
            raise SystemExit("No vidrelay API found: start `vidrelay local`, or pass --api-url and --api-key.")
        return cls(url.rstrip("/"), key)


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        message = body.get("error", {}).get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


class Client:
    def __init__(self, endpoint: Endpoint, *, timeout: float = 60.0) -> None:
        self._http = httpx.Client(
            base_url=endpoint.api_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {endpoint.api_key}"},
        )

    def _check(self, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise ApiError(response.status_code, body)
        return body

    def create(
        self,
        *,
        model: str,
        prompt: str,
        seconds: str | None = None,
        size: str | None = None,
        webhook_url: str | None = None,
        metadata: dict[str, str] | None = None,
        image: Path | None = None,
        idempotency_key: str | None = None,
        extra: dict[str, Any] | None = None,
        files: list[tuple[str, Path]] | None = None,
    ) -> dict[str, Any]:
        """Creates a video. `extra` holds upstream-specific fields under their seed names (`duration`,
        `resolution`, `aspect_ratio`, ...); `files` are reference files as (field, path) in upload order (the
        `image` shorthand is one `input_reference`)."""
        fields: dict[str, Any] = {"model": model, "prompt": prompt, **(extra or {})}
        if seconds:
            fields["seconds"] = seconds
        if size:
            fields["size"] = size
        if webhook_url:
            fields["webhook_url"] = webhook_url
        if metadata:
            fields["metadata"] = metadata
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        uploads = list(files or []) + ([("input_reference", image)] if image is not None else [])
        if uploads:
            form = {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in fields.items()}
            parts = [(name, (path.name, path.read_bytes())) for name, path in uploads]
            return dict(self._check(self._http.post("/videos", data=form, files=parts, headers=headers)))
        return dict(self._check(self._http.post("/videos", json=fields, headers=headers)))

    def retrieve(self, video_id: str) -> dict[str, Any]:
        return dict(self._check(self._http.get(f"/videos/{video_id}")))

    def list(self, *, limit: int = 20) -> dict[str, Any]:
        return dict(self._check(self._http.get("/videos", params={"limit": limit})))

    def wait(
        self,
        video_id: str,
        *,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        timeout_s: float = 900.0,
        interval_s: float = 0.5,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            video = self.retrieve(video_id)
            if on_progress:
                on_progress(video)
            if video["status"] in ("completed", "failed"):
                return video
            if time.monotonic() > deadline:
                raise TimeoutError(f"{video_id} still {video['status']} after {timeout_s:.0f} s")
            time.sleep(interval_s)

    def download(self, video_id: str, path: Path) -> Path:
        """Follows the 302 to the presigned S3 URL (the key is not sent there) and streams to a file."""
        response = self._http.get(f"/videos/{video_id}/content", follow_redirects=False)
        if response.status_code != 302:
            self._check(response)
            raise ApiError(response.status_code, "expected a redirect to the video")
        path.parent.mkdir(parents=True, exist_ok=True)
        with httpx.stream("GET", response.headers["location"], timeout=120.0) as stream:
            if stream.status_code != 200:
                raise ApiError(stream.status_code, "download failed")
            with path.open("wb") as handle:
                for chunk in stream.iter_bytes(1 << 20):
                    handle.write(chunk)
        return path
