"""Upstream simulator: real HTTP servers speaking the three upstream dialects of the seeds.

* ``/v1/videos`` — Sora 2 (seeds 002, 004) and Veo 3.1 image-to-video (seed 003): ``videos``
* ``/v1/video/generations`` — Seedance 2.0 (seed 001): ``generations``
* ``/v1/chat/completions`` streamed — sora_video2 (seed 000): ``chat``

Generation takes ``sim_seconds`` of wall time and produces a real H.264 file of the asked size and length that
shows the prompt and the reference images (see ``mp4gen`` and ``frames``). The Sora and Veo videos are downloaded
from ``/v1/videos/{id}/content`` with the key; the other two dialects hand out signed links to a second server,
the CDN host (``cdn``), which wants no key at all.

Faults can be aimed at single tasks (``[sim:NAME]`` / ``[sim:NAME=VALUE]`` in the prompt) or at the next
requests for a model (``POST /_sim/faults``), and everything the servers saw is inspectable under ``/_sim/``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from vidrelay.simulator.cdn import Cdn
from vidrelay.simulator.chat import ChatApi
from vidrelay.simulator.faults import FaultError, ModelFault, parse_fault_value
from vidrelay.simulator.generations import MAX_BODY_BYTES as GENERATIONS_MAX_BODY_BYTES
from vidrelay.simulator.generations import GenerationsApi
from vidrelay.simulator.state import DEFAULT_CONTENT_400_WINDOW, SimState
from vidrelay.simulator.tasks import now_ms
from vidrelay.simulator.videos import VideosApi
from vidrelay.simulator.web import QuietHandler, bearer_of, error_response, json_response

MAX_BODY_BYTES = 64 * 1024 * 1024
# How often the serving loops look for stop(): two servers at socketserver's default 0.5 s made every test that
# starts a simulator pay a second in teardown.
SHUTDOWN_POLL_S = 0.05
DIALECT_PATHS = (("/v1/videos", "videos"), ("/v1/video/generations", "generations"), ("/v1/chat/", "chat"))

__all__ = ["Simulator"]


def _dialect_of(path: str) -> str | None:
    return next((dialect for prefix, dialect in DIALECT_PATHS if path.startswith(prefix)), None)


class Simulator:
    """The upstream simulator; ``start()`` serves the API and the CDN host from background threads."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        sim_seconds: float = 3.0,
        *,
        cdn_port: int = 0,
        content_400_window: float = DEFAULT_CONTENT_400_WINDOW,
        latency_s: float = 0.0,
    ) -> None:
        self.host = host
        # Held before answering every API request (never /_sim): how a distant upstream feels to the poller.
        self.latency_s = latency_s
        self.port = port
        self.cdn_port = cdn_port
        self.state = SimState(sim_seconds, content_400_window)
        self.cdn = Cdn(self.state)
        self._servers: list[BaseWSGIServer] = []
        self._threads: list[threading.Thread] = []
        apis = (VideosApi(self.state), GenerationsApi(self.state, self.cdn), ChatApi(self.state, self.cdn))
        control = [
            Rule("/_sim/faults", endpoint=self._h_sim_faults, methods=["GET", "POST", "DELETE"]),
            Rule("/_sim/tasks", endpoint=self._h_sim_tasks, methods=["GET"]),
            Rule("/_sim/tasks/<task_id>", endpoint=self._h_sim_task, methods=["GET"]),
            Rule("/_sim/requests", endpoint=self._h_sim_requests, methods=["GET"]),
            Rule("/_sim/reset", endpoint=self._h_sim_reset, methods=["POST"]),
            Rule("/_sim/config", endpoint=self._h_sim_config, methods=["GET", "POST"]),
        ]
        self._url_map = Map([rule for api in apis for rule in api.rules()] + control, strict_slashes=False)

    # -- settings --

    @property
    def sim_seconds(self) -> float:
        return self.state.sim_seconds

    @sim_seconds.setter
    def sim_seconds(self, value: float) -> None:
        self.state.sim_seconds = value

    @property
    def content_400_window(self) -> float:
        return self.state.content_400_window

    @content_400_window.setter
    def content_400_window(self, value: float) -> None:
        self.state.content_400_window = value

    @property
    def url(self) -> str:
        """The API's origin; the seeds' base URL is this plus ``/v1``."""
        return f"http://{self._public_host()}:{self.port}"

    @property
    def cdn_url(self) -> str:
        return f"http://{self._public_host()}:{self.cdn_port}"

    def _public_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host

    # -- lifecycle --

    def start(self) -> Simulator:
        if self._servers:
            return self
        self.state.stopping.clear()
        api = make_server(self.host, self.port, self, threaded=True, request_handler=QuietHandler)
        try:
            cdn = make_server(self.host, self.cdn_port, self.cdn, threaded=True, request_handler=QuietHandler)
        except BaseException:
            api.server_close()
            raise
        self.port, self.cdn_port = api.server_address[1], cdn.server_address[1]
        self.cdn.base_url = self.cdn_url
        self._servers = [api, cdn]
        for name, server in (("api", api), ("cdn", cdn)):
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": SHUTDOWN_POLL_S},
                name=f"vidrelay-simulator-{name}-{server.server_address[1]}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self.state.stopping.set()  # wakes handlers sleeping in submit_timeout and in chat streams
        servers, self._servers = self._servers, []
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def serve_forever(self) -> None:
        """Serve until ``stop()`` is called from another thread or the process is interrupted."""
        self.start()
        try:
            self.state.stopping.wait()
        finally:
            self.stop()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- WSGI (the API server; the CDN host is ``self.cdn``) --

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        dialect = _dialect_of(request.path)
        request.max_content_length = GENERATIONS_MAX_BODY_BYTES if dialect == "generations" else MAX_BODY_BYTES
        # Logged on arrival (so the order is the arrival order); the status is filled in when known and stays
        # None when the connection is dropped without an answer. The key itself is never stored.
        entry: dict[str, Any] = {
            "server": "api",
            "method": request.method,
            "path": request.path,
            "at_ms": now_ms(),
            "status": None,
            "had_bearer": bool(bearer_of(request)),
            "had_authorization": "Authorization" in request.headers,
            "task_id": None,
            "dialect": dialect,
        }
        if not request.path.startswith("/_sim/"):
            self.state.log_request(entry)
            if self.latency_s > 0:
                time.sleep(self.latency_s)

        def recording_start_response(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            entry["status"] = int(status.split(None, 1)[0])
            return start_response(status, headers, *args)

        response = self._dispatch(request, environ, entry)
        return response(environ, recording_start_response)

    def _dispatch(self, request: Request, environ: dict[str, Any], entry: dict[str, Any]) -> Response:
        adapter = self._url_map.bind_to_environ(environ)
        try:
            handler, args = adapter.match()
            response: Response = handler(request, entry, **args)
            return response
        except NotFound:
            return error_response(404, f"Invalid URL ({request.method} {request.path})", code="not_found")
        except MethodNotAllowed:
            return error_response(405, f"Method {request.method} not allowed on {request.path}")
        except HTTPException as exc:  # e.g. 413 from max_content_length while reading the body
            return error_response(exc.code or 400, exc.description or exc.name)

    # -- /_sim: test control and inspection --

    def _h_sim_faults(self, request: Request, entry: dict[str, Any]) -> Response:
        if request.method == "DELETE":
            self.state.disarm(request.args.get("model"))
        elif request.method == "POST":
            body = request.get_json(force=True, silent=True)
            if not isinstance(body, dict) or not isinstance(body.get("fault"), str):
                return error_response(400, 'expected {"model", "fault", "value"?, "times"?}', param="fault")
            times = body.get("times")
            if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
                return error_response(400, "times must be a positive integer or null", param="times")
            try:
                value = parse_fault_value(body["fault"], body.get("value"))
            except FaultError as exc:
                return error_response(400, str(exc), param="fault")
            self.state.arm(ModelFault(str(body.get("model") or "*"), body["fault"], value, times))
        return json_response(self.state.armed())

    def _h_sim_tasks(self, request: Request, entry: dict[str, Any]) -> Response:
        return json_response(self.state.inspect_tasks())

    def _h_sim_task(self, request: Request, entry: dict[str, Any], task_id: str) -> Response:
        task = self.state.lookup(task_id)
        if task is None:
            return error_response(404, f"No task {task_id!r}", param="task_id", code="not_found")
        with self.state.lock:
            return json_response(task.inspect_json(now_ms()))

    def _h_sim_requests(self, request: Request, entry: dict[str, Any]) -> Response:
        return json_response(self.state.requests())

    def _h_sim_reset(self, request: Request, entry: dict[str, Any]) -> Response:
        self.reset()
        return json_response({"ok": True})

    def _h_sim_config(self, request: Request, entry: dict[str, Any]) -> Response:
        if request.method == "POST":
            body = request.get_json(force=True, silent=True)
            if not isinstance(body, dict):
                return error_response(
                    400,
                    'expected {"sim_seconds"?: number, "content_400_window"?: number, "latency_s"?: number}',
                    param="sim_seconds",
                )
            if "latency_s" in body:
                latency = body["latency_s"]
                if isinstance(latency, bool) or not isinstance(latency, int | float) or not 0 <= latency <= 60:
                    return error_response(
                        400,
                        f"bad latency_s: {latency!r} (seconds, 0 to 60, held before every API answer)",
                        param="latency_s",
                    )
                self.latency_s = float(latency)
            for name in ("sim_seconds", "content_400_window"):
                if name in body:
                    try:
                        setattr(self.state, name, body[name])
                    except (TypeError, ValueError) as exc:
                        return error_response(400, f"bad {name}: {exc}", param=name)
        return json_response(
            {
                "sim_seconds": self.sim_seconds,
                "content_400_window": self.content_400_window,
                "latency_s": self.latency_s,
                "api_url": self.url,
                "cdn_url": self.cdn_url,
            }
        )

    # -- in-process equivalents of the /_sim endpoints --

    def reset(self) -> None:
        """Forget every task, logged request and armed fault (the settings are kept)."""
        self.state.reset()

    def tasks(self) -> list[dict[str, Any]]:
        return self.state.inspect_tasks()

    def requests(self) -> list[dict[str, Any]]:
        return self.state.requests()

    def add_fault(self, model: str, fault: str, value: Any = None, times: int | None = None) -> None:
        self.state.arm(ModelFault(model or "*", fault, parse_fault_value(fault, value), times))

    def clear_faults(self) -> None:
        self.state.disarm()
