"""A small vidrelay API client for the CLI and the demo (the OpenAI SDK works too; this avoids its import
cost, covers vidrelay's own routes and shows progress)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from vidrelay.failures import CliError, Explained, one_line
from vidrelay.localstate import START_HINT, read_state

NO_API = (
    "no vidrelay API found: start the local stack with `make local`, or pass --api-url and --api-key "
    "(or set VIDRELAY_API_URL and VIDRELAY_API_KEY)"
)
TERMINAL_STATUSES = ("completed", "failed")


@dataclass(frozen=True)
class Endpoint:
    api_url: str
    api_key: str
    # Where the URL came from ("--api-url", "VIDRELAY_API_URL", "the local stack"), so an error can say which
    # setting to fix.
    url_source: str = "--api-url"
    key_source: str = "--api-key"

    @property
    def is_local(self) -> bool:
        return self.url_source == "the local stack"

    @classmethod
    def discover(cls, api_url: str | None = None, api_key: str | None = None) -> Endpoint:
        """Flags first, then VIDRELAY_API_URL / VIDRELAY_API_KEY, then the running local stack
        (`.vidrelay/local.json` here or in a folder above). The local stack's key is used only with its own URL."""
        env_url, env_key = os.environ.get("VIDRELAY_API_URL"), os.environ.get("VIDRELAY_API_KEY")
        url, url_source = (api_url, "--api-url") if api_url else (env_url, "VIDRELAY_API_URL")
        key, key_source = (api_key, "--api-key") if api_key else (env_key, "VIDRELAY_API_KEY")
        if url and key:
            return cls(url.rstrip("/"), key, url_source, key_source)
        state = read_state()
        if state is None:
            if url:
                raise CliError(f"no API key for {url}: pass --api-key or set VIDRELAY_API_KEY")
            raise CliError(NO_API)
        if url and url.rstrip("/") != state.api_url.rstrip("/"):
            raise CliError(f"no API key for {url}: pass --api-key or set VIDRELAY_API_KEY")
        state.require_running()
        return cls(
            state.api_url.rstrip("/"),
            key or str(state.info["api_key"]),
            url_source if url else "the local stack",
            key_source if key else "the local stack",
        )


class ApiError(Explained):
    """The API answered with an error (OpenAI error shape)."""

    def __init__(
        self,
        status: int,
        body: Any,
        *,
        retry_after: str | None = None,
        endpoint: Endpoint | None = None,
        path: str = "",
    ) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        self.status = status
        self.body = body
        self.message = one_line(error.get("message") or (body if isinstance(body, str) and body else "no message"))
        self.param: str | None = error.get("param")
        self.code: str | None = error.get("code")
        self.retry_after = retry_after
        self.endpoint = endpoint
        self.path = path
        super().__init__(f"HTTP {status}: {self.message}")

    def explain(self) -> str:
        """One line: what the API said, and what to do about it."""
        if self.status == 401:
            source = f" (the key from {self.endpoint.key_source})" if self.endpoint else ""
            where = f" at {self.endpoint.api_url}" if self.endpoint else ""
            return (
                f"the API{where} refused the key{source}: {self.message} Check --api-key or VIDRELAY_API_KEY, "
                "or make a key with `vidrelay keys create --tenant NAME`"
            )
        if self.status == 400:
            param = f" (param: {self.param})" if self.param else ""
            return f"invalid request{param}: {self.message}"
        if self.status == 402:
            return f"over budget: {self.message}"
        if self.status == 404:
            return f"not found: {self.message}{self._where_to_look()}"
        if self.status == 409:
            return f"conflict: {self.message}"
        if self.status == 413:
            return f"too large: {self.message}"
        if self.status == 429:
            wait = f" Retry after {self.retry_after} s." if self.retry_after else ""
            return f"rate limited: {self.message}{wait}"
        if self.status >= 500:
            return f"the API failed (HTTP {self.status}): {self.message} Try again in a moment."
        return f"the API answered HTTP {self.status}: {self.message}"

    def _where_to_look(self) -> str:
        parts = self.path.strip("/").split("/")
        if "deliveries" in parts and len(parts) > parts.index("deliveries") + 1:
            return f" (`vidrelay deliveries {parts[parts.index('deliveries') - 1]}` lists its deliveries)"
        if "webhook_endpoints" in parts:
            return " (`vidrelay endpoints list` lists your endpoints)"
        if "videos" in parts:
            return " (`vidrelay jobs` lists your videos)"
        return ""


class ApiUnreachable(Explained):
    """No answer from the API at all (nothing listening, a timeout, a broken connection)."""

    def __init__(self, endpoint: Endpoint, reason: str) -> None:
        super().__init__(f"{endpoint.api_url}: {reason}")
        self.endpoint = endpoint
        self.reason = reason

    def explain(self) -> str:
        if self.endpoint.is_local:
            return f"the local stack at {self.endpoint.api_url} is not running ({self.reason}); {START_HINT}"
        where, setting = self.endpoint.api_url, self.endpoint.url_source
        return f"cannot reach the vidrelay API at {where} ({self.reason}): check {setting}"


class WaitTimedOut(Exception):
    def __init__(self, video: dict[str, Any], timeout_s: float) -> None:
        super().__init__(f"{video['id']} still {video['status']} after {timeout_s:g} s")
        self.video = video
        self.timeout_s = timeout_s


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        return "connection refused" if "refused" in text else f"cannot connect: {one_line(exc)}"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    return one_line(exc) or type(exc).__name__


class Client:
    def __init__(
        self, endpoint: Endpoint, *, timeout: float = 60.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.endpoint = endpoint
        # A short connect timeout: an API that is not there should say so at once, not after a minute.
        self._timeout = httpx.Timeout(timeout, connect=5.0)
        self._transport = transport
        self._http = httpx.Client(
            base_url=endpoint.api_url,
            timeout=self._timeout,
            headers={"Authorization": f"Bearer {endpoint.api_key}"},
            transport=transport,
        )

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnreachable(self.endpoint, _reason(exc)) from exc

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._check(self._send(method, path, **kwargs))

    def _check(self, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise ApiError(
                response.status_code,
                body,
                retry_after=response.headers.get("retry-after"),
                endpoint=self.endpoint,
                path=response.request.url.path,
            )
        return body

    # -- videos -----------------------------------------------------------------------------------------------

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
            return dict(self._call("POST", "/videos", data=form, files=parts, headers=headers))
        return dict(self._call("POST", "/videos", json=fields, headers=headers))

    def retrieve(self, video_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/videos/{video_id}"))

    def list_videos(self, *, limit: int = 20, after: str | None = None, order: str = "desc") -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "order": order}
        if after:
            params["after"] = after
        return dict(self._call("GET", "/videos", params=params))

    def delete(self, video_id: str) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/videos/{video_id}"))

    def wait(
        self,
        video_id: str,
        *,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        timeout_s: float = 900.0,
        interval_s: float = 0.5,
    ) -> dict[str, Any]:
        """Polls until the video is completed or failed; WaitTimedOut (with the last state) after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            video = self.retrieve(video_id)
            if on_progress:
                on_progress(video)
            if video["status"] in TERMINAL_STATUSES:
                return video
            if time.monotonic() >= deadline:
                raise WaitTimedOut(video, timeout_s)
            time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))

    @contextmanager
    def content(self, video_id: str, *, variant: str = "video") -> Iterator[httpx.Response]:
        """The stored bytes as a stream. The API answers a 302 to a presigned S3 URL; that URL is followed with a
        client of its own, so our bearer key is never sent to S3 (the signature in the URL is the credential)."""
        response = self._send("GET", f"/videos/{video_id}/content", params={"variant": variant})
        if response.status_code != 302:
            self._check(response)
            raise ApiError(response.status_code, "expected a redirect to the stored file", endpoint=self.endpoint)
        location = response.headers["location"]
        with httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0), transport=self._transport) as storage:
            try:
                with storage.stream("GET", location) as stream:
                    if stream.status_code != 200:
                        stream.read()
                        raise CliError(
                            f"the storage link for {video_id} answered HTTP {stream.status_code} "
                            f"({one_line(stream.text[:200])}); try the download again"
                        )
                    yield stream
            except httpx.TransportError as exc:
                raise CliError(f"downloading {video_id} from storage failed ({_reason(exc)}); try again") from exc

    def download(
        self,
        video_id: str,
        path: Path | Callable[[str], Path],
        *,
        variant: str = "video",
        on_bytes: Callable[[int, int | None], None] | None = None,
    ) -> Path:
        """Streams the file to `path` (or to `path(content_type)`) through a temporary file beside it, so an
        interrupted download leaves no half file. `on_bytes(done, total)` follows the progress."""
        with self.content(video_id, variant=variant) as stream:
            target = path(stream.headers.get("content-type", "")) if callable(path) else path
            total = int(stream.headers["content-length"]) if "content-length" in stream.headers else None
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            try:
                with partial.open("wb") as handle:
                    done = 0
                    for chunk in stream.iter_bytes(1 << 20):
                        handle.write(chunk)
                        done += len(chunk)
                        if on_bytes:
                            on_bytes(done, total)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
        return target

    # -- deliveries and endpoints -----------------------------------------------------------------------------

    def deliveries(self, video_id: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/videos/{video_id}/deliveries")["data"])

    def redeliver(self, video_id: str, delivery_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/videos/{video_id}/deliveries/{delivery_id}/redeliver"))

    def create_endpoint(self, url: str, *, event_types: list[str], description: str) -> dict[str, Any]:
        body: dict[str, Any] = {"url": url, "event_types": event_types, "description": description}
        return dict(self._call("POST", "/webhook_endpoints", json=body))

    def endpoints(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/webhook_endpoints")["data"])

    def delete_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/webhook_endpoints/{endpoint_id}"))

    def rotate_endpoint_secret(self, endpoint_id: str, *, grace_period_s: int) -> dict[str, Any]:
        body = {"grace_period_seconds": grace_period_s}
        return dict(self._call("POST", f"/webhook_endpoints/{endpoint_id}/rotate_secret", json=body))

    def test_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/webhook_endpoints/{endpoint_id}/test"))

    # -- usage --------------------------------------------------------------------------------------------------

    def usage(self, *, first_day: str | None = None, last_day: str | None = None) -> dict[str, Any]:
        params = {name: value for name, value in (("from", first_day), ("to", last_day)) if value}
        return dict(self._call("GET", "/usage", params=params))
