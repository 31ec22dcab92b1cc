"""Integration fixtures: the relay's own code against real services, with the tests as the event router.

A real moto server holds every resource of template.yaml (created by `provision`, exactly as `vidrelay local`
does), the upstream simulator answers over HTTP, and a small webhook receiver collects deliveries. Each "process"
is a `vidrelay_core.wiring.Components`, built as `wiring.components()` builds it, but per test and with every external
client wrapped in a proxy that counts calls and can kill the "process" at one of them. The tests then play the event
router and the functions' handlers: they call the poller's `sweep_once()`, receive from the download queue and call
the downloader's `download()`, and receive from the webhook queue and call the notifier's `fan_out()` (an event) or
`process()` (a delivery), as functions/notifier does.

Time: the use cases and the stores read a test clock that the driver moves forward when nothing else can
happen, so leases (submit, download, outbox grace, webhook delivery leases) and retry waits run out in milliseconds
rather than minutes. The simulator and the webhook signatures use real time.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import boto3
import httpx
import pytest
from botocore.config import Config
from vidrelay_core.config import Settings
from vidrelay_core.contract import CreateRequest, parse_create
from vidrelay_core.delivery import DONE, Outcome
from vidrelay_core.delivery import LEASE_S as NOTIFIER_LEASE_S
from vidrelay_core.ids import hash_api_key
from vidrelay_core.jobs import TERMINAL, Job
from vidrelay_core.queues import EventMessage, unwrap_sns, webhook_message
from vidrelay_core.store import intake as intake_store_module
from vidrelay_core.store import jobs as jobs_store_module
from vidrelay_core.store.codec import Table
from vidrelay_core.store.jobs import JobStore
from vidrelay_core.store.tenants import TenantStore
from vidrelay_core.upstream.base import account_for
from vidrelay_core.upstream.videos import VideosAdapter
from vidrelay_core.webhooks import new_secret, verify
from vidrelay_core.wiring import Components

from vidrelay.local.aws import LocalAws
from vidrelay.local.provision import ResourceMap, provision
from vidrelay.local.stack import LOCAL_TIMING_ENV
from vidrelay.local.template import Template
from vidrelay.simulator.server import Simulator

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
STACK_NAME = "vidrelay-it"
UPSTREAM_KEY = "sk-sim-integration-" + secrets.token_hex(8)
# Long enough that a poll made right after the task turned in_progress cannot see it completed already, even on
# a loaded machine (in_progress lasts 85 % of it).
SIM_SECONDS = 0.3
# How far the test clock jumps when the pipeline is idle and no deadline is known: past the longest lease the local
# settings use (stack.py; the download lease, 960 s, is the longest) and the webhook delivery lease.
IDLE_STEP_S = max(NOTIFIER_LEASE_S, *(float(v) for k, v in LOCAL_TIMING_ENV.items() if k.endswith("_LEASE_S"))) + 1.0
DRAIN_DELAYED_S = 3.0  # how long a new test waits for an earlier test's delayed messages to turn up and be dropped

When = Literal["before", "after"]


# ------------------------------------------------------------------------------------------------ crashes


class Crash(BaseException):
    """The function's process died. A BaseException, so no `except Exception` in the relay can swallow it."""


class Drift(AssertionError):
    """The simulator ran ahead of the fixed invocation order (a slow moment), so this run's calls no longer line
    up with the plan. A harness timing problem, not a relay bug: the case is run again."""


@dataclass
class CallLog:
    """Counts every external call of one "process" (one Relay) and kills it at call number `crash_at` (or at the
    first call labelled `crash_on`).

    `when="before"`: the call is never made. `when="after"`: the call is made and takes effect, then the process
    dies before it can use the answer. After the crash the process is dead: any further call (cleanup code in a
    `finally`, another thread) raises Crash too and reaches nothing.
    """

    crash_at: int | None = None
    when: When = "before"
    crash_on: str | None = None  # or: crash at the first call with this label
    phase: str = ""
    calls: list[tuple[str, str]] = field(default_factory=list)  # (phase, label)
    crashed: tuple[int, str, str] | None = None  # (index, phase, label)
    # label -> [barrier, callers still to come]: see rendezvous().
    barriers: dict[str, list[Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def rendezvous(self, label: str, parties: int = 2) -> None:
        """Makes the first `parties` calls of `label` wait for each other before going out (deterministic races)."""
        self.barriers[label] = [threading.Barrier(parties, timeout=10), parties]

    def labels(self, label: str, *, since: int = 0) -> int:
        """How many calls of `label` were made (from call number `since` on)."""
        return sum(1 for _, seen in self.calls[since:] if seen == label)

    def call(self, label: str, fn: Callable[[], Any], discard: Callable[[Any], None] | None = None) -> Any:
        with self._lock:
            if self.crashed is not None:
                raise Crash(f"process already dead; {label} not made")
            index = len(self.calls)
            self.calls.append((self.phase, label))
            crash_here = index == self.crash_at or label == self.crash_on
            if crash_here:
                self.crashed = (index, self.phase, label)
                if self.when == "before":
                    raise Crash(f"killed before call #{index} {label}")
            barrier = None
            if label in self.barriers and not crash_here:
                barrier, self.barriers[label][1] = self.barriers[label][0], self.barriers[label][1] - 1
                if self.barriers[label][1] == 0:
                    del self.barriers[label]
        if barrier is not None:
            barrier.wait()
        result = fn()
        if crash_here:
            if discard is not None:
                discard(result)
            raise Crash(f"killed after call #{index} {label}")
        return result


class CrashingAwsClient:
    """A boto3 client whose API operations go through a CallLog; everything else (exceptions, meta) is passed on."""

    def __init__(self, client: Any, service: str, log: CallLog) -> None:
        self._client = client
        self._service = service
        self._log = log
        self._operations = set(client.meta.method_to_api_mapping)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in self._operations:
            return attr

        def operation(*args: Any, **kwargs: Any) -> Any:
            return self._log.call(f"{self._service}.{name}", lambda: attr(*args, **kwargs))

        return operation


def _http_label(method: str, url: httpx.URL | str) -> str:
    path = httpx.URL(str(url)).path
    path = re.sub(r"video_[0-9a-f]+", "{id}", path)
    path = re.sub(r"^/hooks/.*", "/hooks/{case}", path)
    return f"http.{method.upper()} {path}"


def _close(response: Any) -> None:
    if isinstance(response, httpx.Response):
        response.close()


class CrashingHttpClient:
    """The upstream/webhook httpx client, with every request going through a CallLog."""

    def __init__(self, client: httpx.Client, log: CallLog) -> None:
        self._client = client
        self._log = log

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._log.call(_http_label("POST", url), lambda: self._client.post(url, **kwargs), _close)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._log.call(_http_label("GET", url), lambda: self._client.get(url, **kwargs), _close)

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        return self._log.call(
            _http_label(request.method, request.url), lambda: self._client.send(request, **kwargs), _close
        )

    def build_request(self, *args: Any, **kwargs: Any) -> httpx.Request:
        return self._client.build_request(*args, **kwargs)  # local only, nothing goes out

    def close(self) -> None:
        self._client.close()


# ------------------------------------------------------------------------------------------------ webhooks


@dataclass(frozen=True)
class Delivery:
    path: str
    webhook_id: str
    event: dict[str, Any]
    verified: bool
    status: int


class WebhookReceiver:
    """Collects every POST; answers 200 (or the statuses queued for a path). Verifies Standard Webhooks
    signatures with the one secret every test tenant shares."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.deliveries: list[Delivery] = []
        self.statuses: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._record(self.path, body, headers)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="it-webhooks", daemon=True)

    def _record(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        verified = verify(self.secret, body, headers)
        with self._lock:
            queued = self.statuses.get(path)
            status = queued.pop(0) if queued else 200
            if not verified:
                status = 401
            self.deliveries.append(Delivery(path, headers.get("webhook-id", ""), json.loads(body), verified, status))
        return status

    def url(self, case: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{case}"

    def for_case(self, case: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.path == f"/hooks/{case}"]

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ------------------------------------------------------------------------------------------------ the stack


@dataclass
class Stack:
    endpoint: str
    resources: ResourceMap
    env: dict[str, str]
    simulator: Simulator
    receiver: WebhookReceiver
    session: boto3.session.Session
    webhook_secret: str
    cache: dict[str, Any] = field(default_factory=dict)
    warm_clients: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.table = self.resources.ref("JobsTable")
        self.bucket = self.resources.ref("ResultsBucket")
        self.download_queue = self.resources.queue_url("DownloadQueue")
        self.webhook_queue = self.resources.queue_url("WebhookQueue")
        # The test's own clients (the router's and the inspector's): never wrapped, never crashed.
        self.s3 = self.client("s3")
        self.sqs = self.client("sqs")
        self.dynamodb = self.client("dynamodb")

    def client(self, service: str) -> Any:
        # Locally S3 is an IP:port, where only path-style addressing works (as wiring.aws_client() does).
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"}) if service == "s3" else None
        factory: Any = self.session.client
        return factory(service, endpoint_url=self.endpoint, region_name=REGION, config=config)

    # -- the simulator's inspection routes, over HTTP --

    def sim_tasks(self, case: str | None = None) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = httpx.get(f"{self.simulator.url}/_sim/tasks", timeout=10).json()
        return [t for t in tasks if case is None or f"[case {case}]" in t["prompt"]]

    def sim_requests(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.simulator.url}/_sim/requests", timeout=10).json())

    def sim_reset(self) -> None:
        httpx.post(f"{self.simulator.url}/_sim/reset", timeout=10).raise_for_status()


# As the local stack sets them (stack.py), with its leases: the test clock runs them out in no time.
HARNESS_SETTINGS = {
    "VIDRELAY_ALLOW_LOOPBACK_URLS": "true",
    "VIDRELAY_POLL_INTERVAL_SCALE": "0.02",
    # One shard: with more, each sweep only adds queries of empty shards to the crash matrix.
    "VIDRELAY_INFLIGHT_SHARDS": "1",
    **LOCAL_TIMING_ENV,
}

_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "POWERTOOLS_METRICS_DISABLED",
)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    saved = {name: os.environ.get(name) for name in _ENV}
    # Fake credentials keep boto3 from looking for real ones; every client gets the moto endpoint explicitly.
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "integration",
            "AWS_SECRET_ACCESS_KEY": "integration",
            "AWS_SESSION_TOKEN": "integration",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # No CloudWatch here (as in stack.py): the per-attempt webhook metrics would only print.
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    # The local stack's AWS endpoint: DynamoDB requests one at a time, as the concurrent duplicate-delivery tests
    # need (moto alone lets two concurrent claims of one delivery both pass the same condition).
    aws = LocalAws().start()
    simulator: Simulator | None = None
    receiver: WebhookReceiver | None = None
    try:
        endpoint = aws.url
        template = Template.load(ROOT / "template.yaml")
        resources = provision(template, endpoint_url=endpoint, region=REGION, stack_name=STACK_NAME)
        simulator = Simulator(port=0, sim_seconds=SIM_SECONDS).start()
        env: dict[str, str] = {}
        for fn in template.functions():
            env.update(resources.environment_for(fn))
        env.update(
            {
                "VIDRELAY_UPSTREAM_VIDEOS_BASE_URL": simulator.url,
                "VIDRELAY_UPSTREAM_VIDEOS_API_KEY": UPSTREAM_KEY,
                **HARNESS_SETTINGS,
            }
        )
        webhook_secret = new_secret()
        receiver = WebhookReceiver(webhook_secret).start()
        yield Stack(endpoint, resources, env, simulator, receiver, boto3.session.Session(), webhook_secret)
    finally:
        if receiver is not None:
            receiver.stop()
        if simulator is not None:
            simulator.stop()
        aws.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ------------------------------------------------------------------------------------------------ harness


class Clock:
    """Real time plus an offset the driver moves forward (never back)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Tenant:
    name: str
    api_key: str


@dataclass
class Process:
    """One function container: its graph of use cases (`parts`) and the log of its external calls."""

    parts: Components
    log: CallLog


class Harness:
    """Builds processes against the stack and drives their consumers like the event router would."""

    def __init__(self, stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stack = stack
        self.clock = Clock()
        self._owned: list[httpx.Client] = []
        self._in_flight: dict[str, str] = {}  # receipt handle -> queue url
        # The stores stamp versions, leases and idempotency records with time.time(): give them the test clock.
        for module in (jobs_store_module, intake_store_module):
            monkeypatch.setattr(module, "time", types.SimpleNamespace(time=self.clock))

    def close(self) -> None:
        self.drain()
        for client in self._owned:
            client.close()

    # -- processes --

    def process(
        self,
        log: CallLog | None = None,
        *,
        warm: bool = False,
        adapters: Callable[[str], Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Process:
        """A new "process" (a function container): its Components built as wiring.components() builds them, with
        new boto3 clients (or, when `warm`, the ones a warm container kept from earlier invocations, which hold no
        state of the use cases) and a new HTTP client, every external call going through `log`."""
        log = log or CallLog()
        env = self.stack.env
        config = Settings.from_env(env).model_copy(update=settings or {})
        clients: dict[str, Any] = {}

        def aws(name: str) -> Any:
            if name not in clients:
                if not warm:
                    clients[name] = CrashingAwsClient(self.stack.client(name), name, log)
                else:
                    if name not in self.stack.warm_clients:
                        self.stack.warm_clients[name] = self.stack.client(name)
                    clients[name] = CrashingAwsClient(self.stack.warm_clients[name], name, log)
            return clients[name]

        raw_http = httpx.Client(follow_redirects=False, limits=httpx.Limits(max_connections=64))
        self._owned.append(raw_http)
        http = CrashingHttpClient(raw_http, log)
        account = account_for("videos", env)

        def videos_only(family: str) -> list[VideosAdapter]:
            if family != "videos":
                raise ValueError(f"no adapter for family {family!r}")
            return [VideosAdapter(account, http)]  # type: ignore[arg-type]

        parts = Components(
            config,
            clients=aws,
            adapters=adapters or videos_only,
            upstream_http=lambda: http,  # type: ignore[arg-type,return-value]
            user_http=lambda: http,  # type: ignore[arg-type,return-value]
            clock=self.clock,
        )
        return Process(parts, log)

    def tenants(self) -> TenantStore:
        return TenantStore(Table(self.stack.dynamodb, self.stack.table))

    def new_tenant(self) -> Tenant:
        tenant = Tenant("it-" + secrets.token_hex(6), "sk-it-" + secrets.token_hex(12))
        store = self.tenants()
        store.put_api_key(hash_api_key(tenant.api_key), tenant.name)
        store.put_tenant(tenant.name, webhook_secret=self.stack.webhook_secret)
        return tenant

    def request(self, case: str, *, prompt: str = "a lighthouse at dusk", **fields: Any) -> CreateRequest:
        """A create request as the API would parse it, with the case tag in the prompt (to find its sim task)
        and the receiver's per-case URL as webhook."""
        settings = Settings.from_env(self.stack.env)
        body = {"model": "sora-2", "prompt": f"{prompt} [case {case}]", "webhook_url": self.stack.receiver.url(case)}
        body.update(fields)
        return parse_create(
            body, max_prompt_chars=settings.max_prompt_chars, allow_loopback_urls=settings.allow_loopback_urls
        )

    # -- waiting on the simulator (inspection only: nothing the use cases see) --

    def wait_sim(self, case: str, status: str, timeout_s: float = 10.0) -> dict[str, Any]:
        order = ["queued", "in_progress", "completed"]
        deadline = time.monotonic() + timeout_s
        while True:
            tasks = self.stack.sim_tasks(case)
            if tasks:
                seen = tasks[0]["status"]
                if seen == status:
                    return tasks[0]
                if seen in order and order.index(seen) > order.index(status):
                    raise Drift(f"simulator task of {case} is already {seen}, waited for {status}")
            if time.monotonic() > deadline:
                raise AssertionError(f"simulator task of {case} never reached {status}: {tasks}")
            time.sleep(0.005)

    # -- the event router's part: queues in, consumer calls, delete or make visible again --

    def receive(self, queue_url: str) -> list[dict[str, Any]]:
        """Up to 10 visible messages, now in flight: each must be deleted or released by the caller."""
        answer = self.stack.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
        )
        messages = list(answer.get("Messages", []))
        for message in messages:
            self._in_flight[message["ReceiptHandle"]] = queue_url
        return messages

    def receive_all(self, queue_url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while batch := self.receive(queue_url):
            messages.extend(batch)
        return messages

    def _release(self, queue_url: str, messages: list[dict[str, Any]]) -> None:
        """The invocation died or failed: its messages come back (their visibility timeout, fast-forwarded)."""
        for message in messages:
            self._in_flight.pop(message["ReceiptHandle"], None)
            self.stack.sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )

    def delete(self, queue_url: str, message: dict[str, Any]) -> None:
        self._in_flight.pop(message["ReceiptHandle"], None)
        self.stack.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def consume_downloads(self, p: Process, *, max_batches: int = 5) -> list[str]:
        """The downloader's event source mapping (batch size 1 in the template; one message at a time here)."""
        outcomes: list[str] = []
        queue = self.stack.download_queue
        for _ in range(max_batches):
            messages = self.receive(queue)
            if not messages:
                break
            for i, message in enumerate(messages):
                try:
                    outcomes.append(p.parts.downloader.download(json.loads(message["Body"])["video_id"]))
                except Crash:
                    self._release(queue, messages[i:])
                    raise
                except Exception:  # a retryable failure: the message comes back
                    self._release(queue, messages[i:])
                    outcomes.append("retry")
                    return outcomes
                self.delete(queue, message)
        return outcomes

    @staticmethod
    def body_of(message: dict[str, Any]) -> dict[str, Any]:
        return unwrap_sns(str(message["Body"]))  # an enveloped (non-raw) subscription unwrapped

    @staticmethod
    def handle_webhook_message(p: Process, body: str | dict[str, Any]) -> Outcome:
        """functions/notifier/app.py's record handler: an event is fanned out, a delivery is driven."""
        message = webhook_message(body if isinstance(body, str) else json.dumps(body))
        if isinstance(message, EventMessage):
            p.parts.delivery.fan_out(message)
            return DONE
        return p.parts.delivery.process(message)

    def consume_webhooks(self, p: Process, *, max_batches: int = 10) -> tuple[int, float]:
        """The notifier's event source mapping. Returns (messages done, longest wait of a message put back)."""
        done, wait = 0, 0.0
        queue = self.stack.webhook_queue
        for _ in range(max_batches):
            messages = self.receive(queue)
            if not messages:
                break
            for i, message in enumerate(messages):
                try:
                    outcome = self.handle_webhook_message(p, self.body_of(message))
                except BaseException:
                    self._release(queue, messages[i:])
                    raise
                if outcome.done:
                    self.delete(queue, message)
                    done += 1
                else:  # not due yet: back on the queue (its visibility timeout is fast-forwarded with the clock)
                    self._release(queue, [message])
                    wait = max(wait, outcome.wait_s or 0.0)
            if wait:
                break
        return done, wait

    # -- driving a job --

    def run_happy_path(self, p: Process, tenant: Tenant, case: str, idempotency_key: str) -> str:
        """The pipeline with one fixed order of invocations, so the external calls come in the same order every
        run: create, poll (in_progress), notify (two events), poll (completed), download, notify."""
        log = p.log
        log.phase = "api"
        job = p.parts.create.create(tenant.name, self.request(case), idempotency_key=idempotency_key)
        self.wait_sim(case, "in_progress")
        log.phase = "poller"
        self.clock.advance(1.0)  # the job's next check is due
        p.parts.poller.sweep_once()
        log.phase = "notifier"
        self.consume_webhooks(p)
        self.wait_sim(case, "completed")
        log.phase = "poller"
        self.clock.advance(1.0)
        p.parts.poller.sweep_once()
        log.phase = "downloader"
        self.consume_downloads(p)
        log.phase = "notifier"
        self.consume_webhooks(p)
        log.phase = ""
        return job.id

    def settled(self, tenant: Tenant) -> bool:
        return self._next_deadline(tenant) is None

    def _next_deadline(self, tenant: Tenant) -> float | None:
        """None when the tenant's jobs are finished with their events out and both queues are empty; otherwise
        the earliest moment something is due (`inf` when only queue messages are left)."""
        jobs = self.jobs(tenant)
        due = [job.next_check_at for job in jobs if job.next_check_at is not None]
        if not jobs or due or any(job.state not in TERMINAL for job in jobs):
            return min(due, default=math.inf)
        for queue in (self.stack.download_queue, self.stack.webhook_queue):
            attrs = self.stack.sqs.get_queue_attributes(
                QueueUrl=queue,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if int(attrs["ApproximateNumberOfMessages"]) or int(attrs["ApproximateNumberOfMessagesNotVisible"]):
                return math.inf
        return None

    def converge(self, p: Process, tenant: Tenant, *, timeout_s: float = 20.0) -> None:
        """Keeps the poller, downloader and notifier going until the tenant's jobs are finished, their events
        are out, every webhook delivery is done and both queues are empty. Whenever nothing can happen before a
        poll interval, a lease or a wait ends, moves the clock on to that moment."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            busy = p.parts.poller.sweep_once().checked > 0
            busy = bool(self.consume_downloads(p)) or busy
            done, wait = self.consume_webhooks(p)
            busy = busy or done > 0
            if not busy:
                next_at = self._next_deadline(tenant)
                if next_at is None and not wait:
                    return
                now = self.clock()
                step = min(next_at if next_at is not None else math.inf, now + wait if wait else math.inf) - now
                self.clock.advance(max(0.001, step) if step < math.inf else IDLE_STEP_S)
            time.sleep(0.005)  # the simulator runs on real time
        jobs = [self.describe(j) for j in self.jobs(tenant)]
        raise AssertionError(f"pipeline did not settle in {timeout_s}s: {jobs}")

    # -- what the world looks like --

    def jobs(self, tenant: Tenant) -> list[Job]:
        store = JobStore(Table(self.stack.dynamodb, self.stack.table))
        listed, _ = store.list_jobs(tenant.name, after=None, limit=100, newest_first=True)
        return listed

    def items(self, tenant: Tenant) -> list[dict[str, Any]]:
        """Every item of the tenant's jobs (the job, its webhook deliveries) and Idempotency-Keys, read with a Scan
        (not through any index)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.stack.table,
            "FilterExpression": "(begins_with(pk, :job) AND tenant = :t) OR begins_with(pk, :idem)",
            "ExpressionAttributeValues": {
                ":job": {"S": "JOB#"},
                ":t": {"S": tenant.name},
                ":idem": {"S": f"IDEM#{tenant.name}#"},
            },
            "ConsistentRead": True,
        }
        while True:
            page = self.stack.dynamodb.scan(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def objects(self, tenant: Tenant) -> list[dict[str, Any]]:
        answer = self.stack.s3.list_objects_v2(Bucket=self.stack.bucket, Prefix=f"videos/{tenant.name}/")
        return list(answer.get("Contents", []))

    def open_uploads(self, tenant: Tenant) -> list[dict[str, Any]]:
        answer = self.stack.s3.list_multipart_uploads(Bucket=self.stack.bucket, Prefix=f"videos/{tenant.name}/")
        return list(answer.get("Uploads", []))

    def wipe(self) -> None:
        """Deletes every item of the jobs table. moto answers a Query or Scan by walking the whole table, so a
        long matrix of cases keeps it small to stay fast."""
        keys: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.stack.table, "ProjectionExpression": "pk, sk"}
        while True:
            page = self.stack.dynamodb.scan(**kwargs)
            keys.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        for i in range(0, len(keys), 25):
            self.stack.dynamodb.batch_write_item(
                RequestItems={self.stack.table: [{"DeleteRequest": {"Key": key}} for key in keys[i : i + 25]]}
            )

    def drain(self) -> None:
        """Drops whatever a test left in the queues: what it held in flight comes back first (moto allows one
        PurgeQueue a minute, so no purging)."""
        for handle, queue in list(self._in_flight.items()):
            self._release(queue, [{"ReceiptHandle": handle}])
        deadline = time.monotonic() + DRAIN_DELAYED_S
        for queue in (self.stack.download_queue, self.stack.webhook_queue):
            while True:
                for message in self.receive_all(queue):
                    self.delete(queue, message)
                # A retry an earlier test sent with a short delay (SQS delays run on real time) would otherwise
                # turn up in the middle of this test's run.
                attrs = self.stack.sqs.get_queue_attributes(
                    QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
                )["Attributes"]
                if not int(attrs["ApproximateNumberOfMessagesDelayed"]) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)

    @staticmethod
    def describe(job: Job) -> str:
        return (
            f"{job.id} state={job.state} v{job.version} error={job.error_code} event={job.last_event_type}"
            f"/{'published' if job.event_published else 'UNPUBLISHED'} next_check_at={job.next_check_at}"
            f" downloads={job.download_attempts}"
        )


@pytest.fixture
def harness(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    h = Harness(stack, monkeypatch)
    h.drain()
    try:
        yield h
    finally:
        h.close()
