"""How the parts are put together: one graph of stores, adapters and use cases, built lazily so each function
pays (in cold-start imports and clients) only for what it runs. The functions take theirs from `components()`;
tests build a `Components` of their own with their own clients, clock and upstream adapters."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from .auth import Authenticator
    from .cancellation import DeleteVideo
    from .config import Settings
    from .creation import CreateVideo
    from .delivery import DeliveryWorker
    from .downloading import Downloader
    from .endpoints import Deliveries, WebhookEndpoints
    from .events import EventPublisher
    from .inputs import ReferenceInputs
    from .intake import Intake
    from .lifecycle import Lifecycle
    from .polling import Poller
    from .queries import VideoQueries
    from .queues import Queues
    from .retries import Retries
    from .store.codec import Table
    from .store.counters import CounterStore
    from .store.intake import IntakeClaims
    from .store.jobs import JobStore
    from .store.tenants import TenantStore
    from .store.webhooks import WebhookStore
    from .streaming import Streamer
    from .submission import Submitter
    from .thumbnailing import Thumbnailer
    from .uploads import Uploads
    from .upstream import Adapter


class Components:
    def __init__(
        self,
        settings: Settings,
        *,
        clients: Callable[[str], Any],
        adapters: Callable[[str], Sequence[Adapter]] | None = None,
        upstream_http: Callable[[], httpx.Client] | None = None,
        user_http: Callable[[], httpx.Client] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.clock = clock
        self.rng = rng
        self._adapters = adapters
        self._upstream_http = upstream_http
        self._user_http = user_http

    # -- adapters -----------------------------------------------------------------------------------------------

    def adapters(self, family: str) -> Sequence[Adapter]:
        if self._adapters is not None:
            return self._adapters(family)
        from .upstream import adapters_for

        return adapters_for(family)

    def upstream_http(self) -> httpx.Client:
        if self._upstream_http is not None:
            return self._upstream_http()
        from .http import upstream_client

        return upstream_client()

    def user_http(self) -> httpx.Client:
        if self._user_http is not None:
            return self._user_http()
        from .http import user_url_client

        return user_url_client()

    @cached_property
    def table(self) -> Table:
        from .store.codec import Table

        return Table(self.clients("dynamodb"), self.settings.jobs_table)

    @cached_property
    def jobs(self) -> JobStore:
        from .store.jobs import JobStore

        return JobStore(self.table, retention_days=self.settings.retention_days)

    @cached_property
    def tenants(self) -> TenantStore:
        from .store.tenants import TenantStore

        return TenantStore(self.table)

    @cached_property
    def counters(self) -> CounterStore:
        from .store.counters import CounterStore

        return CounterStore(self.table)

    @cached_property
    def hooks(self) -> WebhookStore:
        from .store.webhooks import WebhookStore

        return WebhookStore(self.table, retention_days=self.settings.retention_days)

    @cached_property
    def claims(self) -> IntakeClaims:
        from .store.intake import IntakeClaims

        return IntakeClaims(self.table)

    @cached_property
    def publisher(self) -> EventPublisher:
        from .events import EventPublisher

        return EventPublisher(self.settings.events_topic_arn, sns=self.clients("sns"))

    @cached_property
    def queues(self) -> Queues:
        from .queues import Queues

        return Queues(self.clients("sqs"), self.settings)

    @cached_property
    def inputs(self) -> ReferenceInputs:
        from .inputs import ReferenceInputs

        return ReferenceInputs(
            self.clients("s3"),
            bucket=self.settings.results_bucket,
            intake_bucket=self.settings.intake_bucket,
            allow_loopback_urls=self.settings.allow_loopback_urls,
        )

    # -- use cases ----------------------------------------------------------------------------------------------

    @cached_property
    def lifecycle(self) -> Lifecycle:
        from .lifecycle import Lifecycle
        from .subscriptions import Subscriptions

        return Lifecycle(
            self.jobs,
            self.publisher,
            retention_days=self.settings.retention_days,
            outbox_grace_s=self.settings.outbox_grace_s,
            subscriptions=Subscriptions(self.hooks),
            progress_events=self.settings.progress_events,
            clock=self.clock,
        )

    @cached_property
    def retries(self) -> Retries:
        from .retries import Retries, RetryPolicy

        policy = RetryPolicy(
            base_s=self.settings.retry_base_s,
            cap_s=self.settings.retry_cap_s,
            budget_s={"submit": self.settings.submit_retry_budget_s, "poll": self.settings.poll_retry_budget_s},
            rng=self.rng or random.Random(),
        )
        return Retries(self.lifecycle, policy, clock=self.clock)

    @cached_property
    def submitter(self) -> Submitter:
        from .polling import poll_interval
        from .submission import Submitter

        return Submitter(
            self.lifecycle,
            self.inputs,
            self.adapters,
            retries=self.retries,
            submit_lease_s=self.settings.submit_lease_s,
            poll_interval=poll_interval(self.settings),
            clock=self.clock,
        )

    @cached_property
    def auth(self) -> Authenticator:
        from .auth import Authenticator

        return Authenticator(self.tenants)

    @cached_property
    def queries(self) -> VideoQueries:
        from .queries import VideoQueries

        return VideoQueries(
            self.jobs,
            self.counters,
            s3=self.clients("s3"),
            presign_ttl_s=self.settings.presign_ttl_s,
            clock=self.clock,
        )

    @cached_property
    def create(self) -> CreateVideo:
        from .creation import CreateVideo

        return CreateVideo(
            self.settings,
            jobs=self.jobs,
            tenants=self.tenants,
            counters=self.counters,
            lifecycle=self.lifecycle,
            inputs=self.inputs,
            submitter=self.submitter,
            queues=self.queues,
            queries=self.queries,
            clock=self.clock,
        )

    @cached_property
    def delete(self) -> DeleteVideo:
        from .cancellation import DeleteVideo

        return DeleteVideo(
            self.lifecycle,
            self.queries,
            s3=self.clients("s3"),
            inputs_bucket=self.settings.results_bucket,
            clock=self.clock,
        )

    @cached_property
    def uploads(self) -> Uploads:
        from .uploads import Uploads

        return Uploads(
            self.clients("s3"),
            bucket=self.settings.results_bucket,
            url_ttl_s=self.settings.upload_url_ttl_s,
            clock=self.clock,
        )

    @cached_property
    def endpoints(self) -> WebhookEndpoints:
        from .endpoints import WebhookEndpoints

        return WebhookEndpoints(
            self.hooks,
            self.counters,
            http=self.user_http,
            allow_loopback_urls=self.settings.allow_loopback_urls,
            tests_per_minute=self.settings.endpoint_tests_per_minute,
            clock=self.clock,
        )

    @cached_property
    def deliveries(self) -> Deliveries:
        from .endpoints import Deliveries

        return Deliveries(self.hooks, self.queues, clock=self.clock)

    @cached_property
    def poller(self) -> Poller:
        from .polling import Poller

        return Poller(
            self.settings,
            jobs=self.jobs,
            lifecycle=self.lifecycle,
            submitter=self.submitter,
            queues=self.queues,
            adapters=self.adapters,
            retries=self.retries,
            clock=self.clock,
        )

    @cached_property
    def streamer(self) -> Streamer:
        from .streaming import Streamer

        return Streamer(
            jobs=self.jobs,
            lifecycle=self.lifecycle,
            submitter=self.submitter,
            queues=self.queues,
            stream_lease_s=self.settings.stream_lease_s,
            download_lease_s=self.settings.download_lease_s,
            clock=self.clock,
        )

    @cached_property
    def downloader(self) -> Downloader:
        from .downloading import Downloader

        return Downloader(
            jobs=self.jobs,
            lifecycle=self.lifecycle,
            adapters=self.adapters,
            s3=self.clients("s3"),
            bucket=self.settings.results_bucket,
            http=self.upstream_http,
            retries=self.retries,
            content_retry_delay_s=self.settings.content_retry_delay_s,
            clock=self.clock,
        )

    @cached_property
    def thumbnailer(self) -> Thumbnailer:
        from .thumbnailing import Thumbnailer

        return Thumbnailer(self.jobs, s3=self.clients("s3"), clock=self.clock)

    @cached_property
    def delivery(self) -> DeliveryWorker:
        from .delivery import DeliveryWorker

        return DeliveryWorker(
            self.settings,
            jobs=self.jobs,
            tenants=self.tenants,
            hooks=self.hooks,
            queues=self.queues,
            http=self.user_http,
            clock=self.clock,
            rng=self.rng,
        )

    @cached_property
    def intake(self) -> Intake:
        from .intake import Intake

        return Intake(
            self.settings,
            create=self.create,
            jobs=self.jobs,
            tenants=self.tenants,
            claims=self.claims,
            s3=self.clients("s3"),
            clock=self.clock,
            rng=self.rng,
        )


@lru_cache(maxsize=8)
def aws_client(service: str) -> Any:
    """One boto3 client per service and container, made on first use (a client costs tens of milliseconds)."""
    import boto3
    from botocore.config import Config

    # Threads share the client (the poller checks jobs side by side): a connection each, not botocore's 10.
    config = Config(max_pool_connections=256)
    if service == "s3":
        # Locally (AWS_ENDPOINT_URL set) S3 is an IP:port: only path-style addressing works there.
        style: Any = "path" if os.environ.get("AWS_ENDPOINT_URL") else "auto"
        # Each part carries its CRC32 checksum, which S3 verifies; signing its payload as well (SHA-256, a second
        # pass over every byte) is what botocore does by default only over plain http, i.e. locally: off, as in
        # the cloud over TLS.
        config = config.merge(
            Config(signature_version="s3v4", s3={"addressing_style": style, "payload_signing_enabled": False})
        )
    factory: Any = boto3.client
    return factory(service, config=config)


@lru_cache(maxsize=1)
def components() -> Components:
    """The function's graph, from its environment, once per container."""
    from .config import Settings  # pydantic: loaded with the first invocation, not at import

    return Components(Settings.from_env(), clients=aws_client)
