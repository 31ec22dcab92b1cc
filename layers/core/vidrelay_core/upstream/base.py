"""What every upstream adapter offers. Nothing above the adapters knows an upstream's dialect."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Protocol

from ..jobs import Job

UpstreamState = Literal["queued", "in_progress", "completed", "failed"]


@dataclass(frozen=True)
class Account:
    """One upstream account. `repr` hides the key so it can never reach a log line by accident."""

    family: str
    base_url: str
    api_key: str = field(repr=False)


@dataclass(frozen=True)
class SubmitResult:
    task_id: str
    state: UpstreamState
    progress: int = 0


@dataclass(frozen=True)
class PollResult:
    state: UpstreamState
    progress: int
    raw_status: str
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class ContentRequest:
    """How to fetch the finished MP4. `headers` may hold the account key: never log or store it."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)


class Adapter(Protocol):
    def submit(self, job: Job, reference: bytes | None = None) -> SubmitResult:
        """Sends the job. `reference` is the prepared image of an image-to-video job (its content type is
        `job.reference_content_type`); the relay reads it from S3, so adapters never touch storage."""
        ...

    def poll(self, job: Job) -> PollResult: ...

    def content_request(self, job: Job) -> ContentRequest: ...


@lru_cache(maxsize=8)
def _ssm_parameter(name: str) -> str:
    import boto3

    response: dict[str, Any] = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)
    return str(response["Parameter"]["Value"])


def account_for(family: str, env: dict[str, str] | None = None) -> Account:
    """The family's account: base URL from the environment; the key from the environment locally, or from the
    SSM SecureString parameter the template names in the cloud (read once per container)."""
    env = dict(os.environ if env is None else env)
    prefix = f"VIDRELAY_UPSTREAM_{family.upper()}_"
    base_url = env.get(prefix + "BASE_URL", "").rstrip("/")
    if not base_url:
        raise RuntimeError(f"{prefix}BASE_URL is not set")
    key = env.get(prefix + "API_KEY")
    if not key:
        parameter = env.get(prefix + "API_KEY_PARAMETER")
        if not parameter:
            raise RuntimeError(f"neither {prefix}API_KEY nor {prefix}API_KEY_PARAMETER is set")
        key = _ssm_parameter(parameter)
    return Account(family=family, base_url=base_url, api_key=key)
