"""The chaos run's API clients: every answer counted (5xx and transport errors above all), creates retried as a
careful client would (the same Idempotency-Key, so a retry can never make a second job), replays checked."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from .plan import PlannedJob, request_for

CREATE_TRIES = 5
TERMINAL = ("completed", "failed", "expired", "canceled")


@dataclass
class ApiLog:
    """Every API answer the run saw, by status, and the 5xx ones in detail."""

    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[dict[str, Any]] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    create_seconds: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, method: str, path: str, response: httpx.Response) -> None:
        with self._lock:
            self.statuses[response.status_code] += 1
            if response.status_code >= 500:
                self.server_errors.append(
                    {"method": method, "path": path, "status": response.status_code, "body": response.text[:300]}
                )

    def timed_create(self, seconds: float) -> None:
        with self._lock:
            self.create_seconds.append(seconds)

    def failed(self, method: str, path: str, exc: Exception) -> None:
        with self._lock:
            self.transport_errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")


@dataclass
class Created:
    job: PlannedJob
    video: dict[str, Any] | None = None
    error: str | None = None
    replay_ids: list[str | None] = field(default_factory=list)


class Api:
    def __init__(self, base_url: str, api_key: str, log: ApiLog) -> None:
        self.log = log
        self._http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=90, follow_redirects=False
        )

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.log.failed(method, path, exc)
            raise
        self.log.record(method, path, response)
        return response

    def close(self) -> None:
        self._http.close()


class Creator:
    """Creates planned jobs; thread-safe (one httpx client per thread)."""

    def __init__(self, base_url: str, api_key: str, simulator_url: str, log: ApiLog, run_id: str, hook: str):
        self._base_url, self._api_key, self._log = base_url, api_key, log
        self._simulator_url = simulator_url
        self._run_id, self._hook = run_id, hook
        self._local = threading.local()

    def _api(self) -> Api:
        api = getattr(self._local, "api", None)
        if api is None:
            api = self._local.api = Api(self._base_url, self._api_key, self._log)
        return api

    def create(self, job: PlannedJob) -> Created:
        if job.fault.armed is not None:
            fault, value = job.fault.armed
            armed = {"model": job.model.id, "fault": fault, "value": value, "times": 1}
            httpx.post(f"{self._simulator_url}/_sim/faults", json=armed, timeout=10).raise_for_status()
        key = f"chaos-{uuid.uuid4()}"
        created = Created(job)
        if job.replay == "concurrent":
            with ThreadPoolExecutor(max_workers=2) as pool:
                first, second = list(pool.map(lambda _: self._create_once(job, key), range(2)))
            created.video, created.error = first
            created.replay_ids.append(second[0]["id"] if second[0] else None)
            return created
        created.video, created.error = self._create_once(job, key)
        if job.replay == "after" and created.video is not None:
            again, _ = self._create_once(job, key)
            created.replay_ids.append(again["id"] if again else None)
        return created

    def _create_once(self, job: PlannedJob, key: str) -> tuple[dict[str, Any] | None, str | None]:
        """(the Video object, None) or (None, what went wrong), after up to CREATE_TRIES tries on a 5xx or a
        transport error, each with the same key and body."""
        api = self._api()
        last = ""
        for attempt in range(CREATE_TRIES):
            kwargs = request_for(job, self._hook, self._run_id)
            began = time.monotonic()
            try:
                response = api.call("POST", "/videos", headers={"Idempotency-Key": key}, **kwargs)
                self._log.timed_create(time.monotonic() - began)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return dict(response.json()), None
                last = f"{response.status_code}: {response.text[:300]}"
                if response.status_code < 500:
                    return None, last
            time.sleep(0.5 * 2**attempt)
        return None, last


def list_videos(api: Api) -> dict[str, dict[str, Any]]:
    """Every video of the tenant, by id, through the list's cursor."""
    found: dict[str, dict[str, Any]] = {}
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if after:
            params["after"] = after
        response = api.call("GET", "/videos", params=params)
        response.raise_for_status()
        page = response.json()
        for video in page["data"]:
            found[video["id"]] = video
        if not page.get("has_more") or not page["data"]:
            return found
        after = page["data"][-1]["id"]


def wait_until_terminal(api: Api, ids: set[str], timeout_s: float) -> dict[str, dict[str, Any]]:
    """The last seen Video object of each id, once all are terminal or the time is up."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, dict[str, Any]] = {}
    while True:
        try:
            listed = list_videos(api)
        except httpx.HTTPError:
            listed = {}
        seen.update({video_id: video for video_id, video in listed.items() if video_id in ids})
        if all(seen.get(i, {}).get("status") in TERMINAL for i in ids) or time.monotonic() > deadline:
            return seen
        time.sleep(2.0)
