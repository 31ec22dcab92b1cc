"""Settings read from the environment once per process, validated at entry (never at import time)."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    jobs_table: str = Field(min_length=1)
    results_bucket: str = Field(min_length=1)
    events_topic_arn: str = Field(min_length=1)
    download_queue_url: str = ""
    stream_queue_url: str = ""
    # Where S3-triggered jobs come from; a reference may also name an object under the tenant's inbox/ there.
    intake_bucket: str = ""
    # POST /v1/uploads: the largest file a presigned PUT may carry (Seedance takes 50 MB videos), and how long
    # the URL is valid.
    max_upload_bytes: int = 50 * 1024 * 1024
    upload_url_ttl_s: int = 900
    webhook_queue_url: str = ""
    webhook_dlq_url: str = ""
    retention_days: int = 30
    inflight_shards: int = Field(default=8, ge=1, le=256)
    # Local mode allows webhooks to loopback (a receiver on the laptop); the cloud never does.
    allow_loopback_urls: bool = False
    # Local mode shrinks upstream poll intervals so a simulated job is seen completed within a second.
    poll_interval_scale: float = Field(default=1.0, gt=0)
    poller_sweep_seconds: float = 50.0
    poller_tick_s: float = Field(default=1.0, gt=0)
    # Retry delay multiplier for webhook redelivery (the local stack's --webhook-retry-scale).
    webhook_retry_scale: float = Field(default=1.0, gt=0)
    presign_ttl_s: int = 3600
    max_prompt_chars: int = 4000
    # Job creations per tenant per minute (the API and the S3 intake together); a tenant's own limit, set with
    # `vidrelay keys create --rate-per-minute`, wins. 0 turns the limit off.
    rate_per_minute: int = Field(default=60, ge=0)
    # S3 intake: the queue whose messages a waiting or rate-limited object is put back on, and how long a sidecar
    # with no image waits for one before it starts a text-to-video job.
    intake_queue_url: str = ""
    intake_settle_s: float = Field(default=30.0, ge=0)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)

        def get(name: str, default: str = "") -> str:
            return env.get(f"VIDRELAY_{name}", default)

        return cls(
            jobs_table=get("JOBS_TABLE"),
            results_bucket=get("RESULTS_BUCKET"),
            events_topic_arn=get("EVENTS_TOPIC_ARN"),
            download_queue_url=get("DOWNLOAD_QUEUE_URL"),
            stream_queue_url=get("STREAM_QUEUE_URL"),
            intake_bucket=get("INTAKE_BUCKET"),
            webhook_queue_url=get("WEBHOOK_QUEUE_URL"),
            webhook_dlq_url=get("WEBHOOK_DLQ_URL"),
            retention_days=int(get("RETENTION_DAYS", "30")),
            inflight_shards=int(get("INFLIGHT_SHARDS", "8")),
            allow_loopback_urls=get("ALLOW_LOOPBACK_URLS", "false").lower() == "true",
            poll_interval_scale=float(get("POLL_INTERVAL_SCALE", "1")),
            poller_sweep_seconds=float(get("POLLER_SWEEP_SECONDS", "50")),
            poller_tick_s=float(get("POLLER_TICK_S", "1")),
            webhook_retry_scale=float(get("WEBHOOK_RETRY_SCALE", "1")),
            rate_per_minute=int(get("RATE_PER_MINUTE", "60")),
            intake_queue_url=get("INTAKE_QUEUE_URL"),
            intake_settle_s=float(get("INTAKE_SETTLE_S", "30")),
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
