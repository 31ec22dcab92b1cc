"""`vidrelay local`: the whole deployment on a laptop. An embedded moto server holds every resource declared in
template.yaml, the upstream simulator stands in for the providers, the template's functions run in-process,
and the event router wires them exactly as the template says."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from vidrelay.localstate import remove_state, write_state

from .apigw import HttpApi
from .aws import LocalAws
from .processes import ProcessPool
from .provision import ResourceMap, provision
from .router import Scheduler, SnsSubscriber, SqsPoller
from .runtime import FunctionPool, Pool
from .template import EventSpec, FunctionSpec, Template

log = logging.getLogger("vidrelay.local")

REGION = "us-east-1"
DEFAULT_API_KEY = "sk-local-vidrelay"
TENANT = "local"
# Leases and waits of the local stack. Every lease outlasts the longest its work can take under the same
# timeouts as in the cloud (tests/unit/test_leases.py checks it): a slow upstream or a long download is never
# taken for a dead worker. Only the grace periods and the content retry delay are shorter than in the cloud.
LOCAL_TIMING_ENV = {
    # Submit: up to 58 s (failover budget + one request); more room than the cloud's 60 s, because the embedded
    # moto takes DynamoDB requests one at a time and a busy laptop can make the closing write wait its turn.
    "VIDRELAY_SUBMIT_LEASE_S": "75",
    "VIDRELAY_SUBMIT_GRACE_S": "2",
    # Download: the downloader stops within its function's 900 s timeout (transfer.download_deadline).
    "VIDRELAY_DOWNLOAD_LEASE_S": "960",
    "VIDRELAY_OUTBOX_GRACE_S": "2",
    # Stream: up to 98 s until the first chunk, 100 s between renewals.
    "VIDRELAY_STREAM_LEASE_S": "120",
    "VIDRELAY_CONTENT_RETRY_DELAY_S": "1",
    # Retries of a failing upstream back off from half a second (the simulator answers in milliseconds); the
    # budgets stay the cloud's, so a job whose upstream keeps failing ends as it would there.
    "VIDRELAY_RETRY_BASE_S": "0.5",
    "VIDRELAY_RETRY_CAP_S": "30",
}


def project_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "template.yaml").exists() and (parent / "functions").is_dir():
            return parent
    raise FileNotFoundError("template.yaml not found above the vidrelay package")


class PortInUse(RuntimeError):
    """The API port is taken: reported before anything starts, and `vidrelay local` exits 2."""


def ensure_port_free(port: int) -> None:
    """Fails before anything starts, rather than after moto and the simulator are up."""
    if port == 0:
        return
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortInUse(f"port {port} is in use (another vidrelay local?); stop it or pass --port") from exc


@dataclass
class LocalOptions:
    port: int = 8787
    sim_seconds: float = 4.0
    strict_urls: bool = False
    webhook_retry_scale: float = 1.0
    api_key: str = field(default_factory=lambda: os.environ.get("VIDRELAY_LOCAL_API_KEY", DEFAULT_API_KEY))
    webhook_secret: str | None = field(default_factory=lambda: os.environ.get("VIDRELAY_LOCAL_WEBHOOK_SECRET"))
    state_dir: Path = field(default_factory=lambda: Path.cwd() / ".vidrelay")
    root: Path | None = None
    containers: int = 4
    # How fast the poller revisits a job locally: the simulator finishes in seconds, not minutes.
    poll_interval_scale: float = 0.02
    poller_budget_s: float = 2.0
    # How long an intake sidecar waits for its image locally (30 s in the cloud): uploads from one script land
    # within a second of each other.
    intake_settle_s: float = 5.0
    # Job creations per tenant per minute, as the template's RatePerMinute (0: no limit).
    rate_per_minute: int = 60
    # The share of SQS messages the router delivers twice (0: once each), to test that every consumer is
    # idempotent; only the chaos run turns it on.
    duplicate_delivery_rate: float = 0.0
    extra_env: dict[str, str] = field(default_factory=dict)
    # Powertools JSON logs (INFO) and EMF metrics on stdout, as in CloudWatch; otherwise warnings and errors are
    # one readable line each. An explicit POWERTOOLS_LOG_LEVEL keeps the JSON logs at that level.
    verbose: bool = False
    # Called with one readable line per video event (`vidrelay local` prints them).
    on_job_step: Callable[[str], None] | None = None
    # Functions whose containers run as processes of their own: the thumbnailer decodes video, CPU work that
    # in-process would hold the GIL every other function needs (in Lambda each function has its own CPU).
    process_functions: frozenset[str] = frozenset({"ThumbnailerFunction"})


class LocalStack:
    def __init__(self, options: LocalOptions | None = None) -> None:
        self.options = options or LocalOptions()
        self.root = self.options.root or project_root()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._servers: list[BaseWSGIServer] = []
        self.aws: LocalAws | None = None
        self.simulator: Any = None
        self.resources: ResourceMap | None = None
        self.pools: dict[str, Pool] = {}
        self.info: dict[str, Any] = {}

    @property
    def state_path(self) -> Path:
        return self.options.state_dir / "local.json"

    def start(self) -> dict[str, Any]:
        """Starts everything; if any part fails, stops what already runs before raising."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> dict[str, Any]:
        from vidrelay_core.webhooks import new_secret

        from vidrelay.simulator.server import Simulator

        opts = self.options
        # Every AWS call and every API request would otherwise print an access-log line.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # Metrics are disabled locally (no CloudWatch); Powertools still warns on every flush.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        ensure_port_free(opts.port)
        # moto, with DynamoDB requests taken one at a time where moto is not safe under concurrency (aws.py).
        self.aws = LocalAws().start()
        endpoint = self.aws.url
        self.simulator = Simulator(port=0, sim_seconds=opts.sim_seconds).start()

        # Functions read their configuration from the environment, as in Lambda. Fake credentials keep boto3
        # from looking for real ones; AWS_ENDPOINT_URL points every client at the embedded moto.
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_SESSION_TOKEN": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": endpoint,
            }
        )
        template = Template.load(self.root / "template.yaml")
        self.resources = provision(template, endpoint_url=endpoint, region=REGION, stack_name="vidrelay-local")
        functions = template.functions()
        env: dict[str, str] = {}
        for fn in functions:
            env.update(self.resources.environment_for(fn))
        upstream_key = os.environ.get("VIDRELAY_LOCAL_UPSTREAM_KEY") or "sk-sim-" + secrets.token_hex(12)
        env.update(
            {
                # The simulator speaks all three dialects; each family gets its own account, as in the cloud.
                **{
                    f"VIDRELAY_UPSTREAM_{family}_{name}": value
                    for family in ("VIDEOS", "GENERATIONS", "CHAT")
                    for name, value in (("BASE_URL", self.simulator.url), ("API_KEY", upstream_key))
                },
                "VIDRELAY_ALLOW_LOOPBACK_URLS": "false" if opts.strict_urls else "true",
                "VIDRELAY_POLL_INTERVAL_SCALE": str(opts.poll_interval_scale),
                "VIDRELAY_WEBHOOK_RETRY_SCALE": str(opts.webhook_retry_scale),
                "VIDRELAY_POLLER_SWEEP_SECONDS": str(opts.poller_budget_s),
                "VIDRELAY_POLLER_TICK_S": "0.1",
                **LOCAL_TIMING_ENV,
                "VIDRELAY_INTAKE_SETTLE_S": str(opts.intake_settle_s),
                "VIDRELAY_RATE_PER_MINUTE": str(opts.rate_per_minute),
                # The console's line per job step reads the events topic itself, progress included.
                **({"VIDRELAY_PROGRESS_EVENTS": "always"} if opts.on_job_step is not None else {}),
                "POWERTOOLS_METRICS_DISABLED": "false" if opts.verbose else "true",
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO" if opts.verbose else "WARNING"),
                **opts.extra_env,
            }
        )
        os.environ.update(env)
        self.upstream_key = upstream_key

        webhook_secret = opts.webhook_secret or new_secret()
        self._seed_tenant(opts.api_key, webhook_secret)

        quiet = not opts.verbose and "POWERTOOLS_LOG_LEVEL" not in os.environ
        pools: dict[str, Pool] = {}
        self.pools = pools  # before the pools start: stop() closes the ones that did if one fails
        for fn in functions:
            containers = _containers(fn, opts.containers)
            if fn.logical_id in opts.process_functions:
                pools[fn.logical_id] = ProcessPool(fn, self.root, containers=containers, region=REGION, quiet=quiet)
            else:
                pools[fn.logical_id] = FunctionPool(fn, self.root, containers=containers, region=REGION)
        if quiet:
            # After the functions are loaded: their shared Powertools logger exists only from then on.
            from .console import quiet_function_logs

            quiet_function_logs()
        if opts.on_job_step is not None:
            self._follow_job_steps(opts.on_job_step)
        self._wire(template, pools)

        api = HttpApi((method, path, pools[fn_id]) for method, path, fn_id in template.routes())
        server = make_server("127.0.0.1", opts.port, api, threaded=True)
        self._servers.append(server)
        self._spawn(server.serve_forever, "api")

        self.info = {
            "api_url": f"http://127.0.0.1:{server.server_port}/v1",
            "api_key": opts.api_key,
            "tenant": TENANT,
            "webhook_secret": webhook_secret,
            "aws_endpoint_url": endpoint,
            "region": REGION,
            "intake_bucket": self.resources.ref("IntakeBucket"),
            "jobs_table": self.resources.ref("JobsTable"),
            "results_bucket": self.resources.ref("ResultsBucket"),
            "simulator_url": self.simulator.url,
            # Readers check that this process still runs: a stack killed before it could remove the file is
            # reported as not running instead of being connected to.
            "pid": os.getpid(),
        }
        write_state(opts.state_dir, self.info)
        return self.info

    def _follow_job_steps(self, emit: Callable[[str], None]) -> None:
        import boto3

        from .console import JobSteps

        assert self.resources is not None
        steps = JobSteps(
            sqs=boto3.client("sqs"),
            sns=boto3.client("sns"),
            topic_arn=self.resources.ref("VideoEventsTopic"),
            emit=emit,
            stop=self._stop,
        )
        self._threads.append(steps)

    def _seed_tenant(self, api_key: str, webhook_secret: str) -> None:
        import boto3
        from vidrelay_core.ids import hash_api_key
        from vidrelay_core.store.codec import Table
        from vidrelay_core.store.tenants import TenantStore

        assert self.resources is not None
        store = TenantStore(Table(boto3.client("dynamodb"), self.resources.ref("JobsTable")))
        store.create_api_key("key_local", hash_api_key(api_key), TENANT, now=time.time())
        store.put_tenant(TENANT, webhook_secret=webhook_secret)

    def _wire(self, template: Template, pools: dict[str, Pool]) -> None:
        import boto3

        assert self.resources is not None
        sqs = boto3.client("sqs")
        for fn in template.functions():
            for event in fn.events:
                pool = pools[fn.logical_id]
                if event.kind == "sqs" and event.queue:
                    # As Lambda scales an SQS event source: up to its MaximumConcurrency invocations at once.
                    for worker in range(event.max_concurrency or self.options.containers):
                        self._threads.append(
                            SqsPoller(
                                pool,
                                sqs=sqs,
                                queue_url=self.resources.queue_url(event.queue),
                                queue_arn=self.resources.attr(event.queue, "Arn"),
                                batch_size=event.batch_size or 10,
                                report_failures=event.report_batch_item_failures,
                                stop=self._stop,
                                name=f"sqs-{fn.logical_id}-{worker}",
                                duplicate_rate=self.options.duplicate_delivery_rate,
                            )
                        )
                elif event.kind == "sns" and event.topic:
                    self._threads.extend(self._sns_subscribers(sqs, fn, event, pool))
                elif event.kind == "schedule":
                    self._threads.append(
                        Scheduler(
                            pool,
                            rule_name=f"{fn.logical_id}{event.name}",
                            rule_arn=f"arn:aws:events:{REGION}:123456789012:rule/{fn.logical_id}{event.name}",
                            budget_s=self.options.poller_budget_s,
                            stop=self._stop,
                        )
                    )
        for thread in self._threads:
            thread.start()

    def _sns_subscribers(self, sqs: Any, fn: FunctionSpec, event: EventSpec, pool: Pool) -> list[SnsSubscriber]:
        """SNS → Lambda: a queue of the local stack's own takes what the template's filter policy lets through,
        and as many invokers as the function has containers (Lambda runs asynchronous invocations side by side)."""
        import boto3

        assert self.resources is not None
        queue_url = sqs.create_queue(
            QueueName=f"vidrelay-local-{fn.logical_id}-{event.name}",
            # An invocation in progress is never handed out a second time.
            Attributes={"VisibilityTimeout": str(fn.timeout_s + 60)},
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = {"RawMessageDelivery": "false"}
        if event.filter_policy:
            attributes["FilterPolicy"] = json.dumps(event.filter_policy)
            attributes["FilterPolicyScope"] = event.filter_policy_scope
        subscription = boto3.client("sns").subscribe(
            TopicArn=self.resources.ref(event.topic or ""),
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        on_failure = fn.async_invoke.on_failure
        return [
            SnsSubscriber(
                pool,
                sqs=sqs,
                queue_url=queue_url,
                subscription_arn=subscription["SubscriptionArn"],
                async_invoke=fn.async_invoke,
                failure_queue_url=self.resources.queue_url(on_failure) if on_failure else None,
                stop=self._stop,
                name=f"sns-{fn.logical_id}-{event.name}-{worker}",
            )
            for worker in range(self.options.containers)
        ]

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stops everything and removes the state file (if it is still this stack's), so that no command is sent
        to a stack that is gone."""
        if self.info:
            remove_state(self.options.state_dir, self.info)
        self._stop.set()
        for server in self._servers:
            server.shutdown()
        # One deadline for all threads (they are daemons: one stuck in a call cannot keep the process alive).
        deadline = time.monotonic() + self.options.poller_budget_s + 5
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for pool in self.pools.values():
            pool.close()
        if self.simulator is not None:
            self.simulator.stop()
        if self.aws is not None:
            self.aws.stop()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _containers(fn: FunctionSpec, default: int) -> int:
    """Enough containers for every invocation the function's event sources may run at once."""
    return max([default, *(event.max_concurrency or 0 for event in fn.events)])
