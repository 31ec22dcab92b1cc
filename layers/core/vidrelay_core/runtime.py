"""Builds the relay from the environment, lazily and once per container. Tests build their own `Relay`."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING

from .config import Settings
from .events import EventPublisher
from .notifications import Notifier
from .service import Relay, Timing
from .store import JobStore

if TYPE_CHECKING:
    from .intake import Intake


@lru_cache(maxsize=1)
def relay() -> Relay:
    import boto3
    from botocore.config import Config

    settings = Settings.from_env()
    # Locally (AWS_ENDPOINT_URL set) S3 is an IP:port: only path-style addressing works there.
    s3_config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if os.environ.get("AWS_ENDPOINT_URL") else "auto"},
    )
    return Relay(
        settings,
        store=JobStore(settings.jobs_table, client=boto3.client("dynamodb"), retention_days=settings.retention_days),
        publisher=EventPublisher(settings.events_topic_arn, sns=boto3.client("sns")),
        s3=boto3.client("s3", config=s3_config),
        sqs=boto3.client("sqs"),
        timing=Timing.from_env(dict(os.environ)),
    )


@lru_cache(maxsize=1)
def notifier() -> Notifier:
    from .webhook_store import WebhookStore
    from .webhooks import webhook_client

    service = relay()
    settings = service.settings
    return Notifier(
        settings,
        jobs=service.store,
        hooks=WebhookStore(settings.jobs_table, client=service.store.client, retention_days=settings.retention_days),
        sqs=service.sqs,
        http=webhook_client,
    )


@lru_cache(maxsize=1)
def intake() -> Intake:
    from .intake import Intake

    return Intake(relay())
