"""The configuration: one pydantic model, read from the environment once per process (never at import time).

Each field comes from `VIDRELAY_<FIELD NAME IN CAPITALS>` (template.yaml sets them per function; the local stack
sets its own), validated and typed by the model, so a wrong value fails at the first invocation with the
variable's name rather than deep inside a request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field

ENV_PREFIX = "VIDRELAY_"


class Settings(BaseModel):
    jobs_table: str = Field(min_length=1)
    results_bucket: str = Field(min_length=1)
    events_topic_arn: str = Field(min_length=1)
    download_queue_url: str = ""
    stream_queue_url: str = ""
    webhook_queue_url: str = ""
    webhook_dlq_url: str = ""
    # S3 intake: the bucket (a reference may also name an object under the tenant's inbox/ there), the queue a
    # waiting or rate-limited object is put back on, and how long a sidecar with no image waits for one.
    intake_bucket: str = ""
    intake_queue_url: str = ""
    intake_settle_s: float = Field(default=30.0, ge=0)
    # POST /v1/uploads: the largest file a presigned PUT may carry (Seedance takes 50 MB videos), and how long
    # the URL is valid.
    max_upload_bytes: int = 50 * 1024 * 1024
    upload_url_ttl_s: int = 900
    presign_ttl_s: int = 3600
    retention_days: int = 30
    inflight_shards: int = Field(default=8, ge=1, le=256)
    max_prompt_chars: int = 4000
    # Job creations per tenant per minute (the API and the S3 intake together); a tenant's own limit, set with
    # `vidrelay keys create --rate-per-minute`, wins. 0 turns the limit off.
    rate_per_minute: int = Field(default=60, ge=0)
    # Signed test events a tenant may send to its endpoints per minute (POST /v1/webhook_endpoints/{id}/test).
    endpoint_tests_per_minute: int = Field(default=10, ge=1)
    # Local mode allows webhooks to loopback (a receiver on the laptop); the cloud never does.
    allow_loopback_urls: bool = False
    # Local mode shrinks upstream poll intervals so a simulated job is seen completed within a second.
    poll_interval_scale: float = Field(default=1.0, gt=0)
    # The poller's scheduled invocation keeps sweeping this long, one sweep every tick.
    poller_sweep_seconds: float = 50.0
    poller_tick_s: float = Field(default=1.0, gt=0)
    # How many due jobs one sweep checks at once: enough to ask 10,000 jobs an upstream answering in 200 ms
    # within one 15 s poll interval (10,000 x 0.2 s / 15 s ≈ 134).
    poller_concurrency: int = Field(default=160, ge=1, le=512)
    # Retry delay multiplier for webhook redelivery (the local stack's --webhook-retry-scale).
    webhook_retry_scale: float = Field(default=1.0, gt=0)
    # "subscribed": a video.in_progress event is published only when a webhook target wants it (each one costs a
    # publish and two job writes); "always": every one, for consumers of the events topic itself.
    progress_events: Literal["subscribed", "always"] = "subscribed"

    # Leases and grace periods. The local stack shortens some so crash tests converge in seconds.
    submit_lease_s: float = Field(default=60.0, gt=0)
    # How long the poller leaves a new job to the api that created it before submitting it itself.
    submit_grace_s: float = Field(default=10.0, ge=0)
    download_lease_s: float = Field(default=960.0, gt=0)
    outbox_grace_s: float = Field(default=30.0, ge=0)
    max_job_age_s: float = Field(default=6 * 3600.0, gt=0)
    # A streaming job's worker renews this lease while it reads; a lease run out means the worker died.
    stream_lease_s: float = Field(default=120.0, gt=0)
    # A failing upstream is retried with exponential backoff and jitter from `retry_base_s` up to `retry_cap_s`;
    # a run of failing submits or polls gives up after its budget, a download after `max_download_attempts`.
    retry_base_s: float = Field(default=5.0, gt=0)
    retry_cap_s: float = Field(default=600.0, gt=0)
    submit_retry_budget_s: float = Field(default=1800.0, gt=0)
    poll_retry_budget_s: float = Field(default=1800.0, gt=0)
    max_download_attempts: int = Field(default=5, ge=1)
    # Seed 003: Veo's /content "returns 400 occasionally right after status flips to completed; retry after 4 sec".
    content_retry_delay_s: float = Field(default=4.0, ge=0)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        given = {
            name: source[ENV_PREFIX + name.upper()] for name in cls.model_fields if ENV_PREFIX + name.upper() in source
        }
        return cls.model_validate(given)


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
