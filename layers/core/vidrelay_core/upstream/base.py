"""What every upstream adapter offers, the upstream accounts, and the HTTP error rules all dialects share.
Nothing above the adapters knows an upstream's dialect."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

from ..errors import UpstreamAmbiguous, UpstreamRejected, UpstreamResultGone, UpstreamUnavailable
from ..jobs import Job, StoredReference
from ..timeouts import longest_request_s

UpstreamState = Literal["queued", "in_progress", "completed", "failed"]

# Every dialect's status words, normalised (SPEC §2). Seed 001's `succeeded` is not yet downloadable: only
# `completed` carries the video_url.
STATUS: dict[str, UpstreamState] = {
    "queued": "queued",
    "pending": "queued",
    "in_progress": "in_progress",
    "running": "in_progress",
    "succeeded": "in_progress",
    "completed": "completed",
    "failed": "failed",
}

SUBMIT_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=20.0, pool=5.0)
POLL_TIMEOUT = httpx.Timeout(connect=5.0, read=10.0, write=10.0, pool=5.0)


def longest_submit_s(failover_budget_s: float) -> float:
    """How long a submit holds its lease, from taking it to the answer: the next account may still be tried
    `failover_budget_s` after the lease was taken (Relay.submit), and every try is one request under
    SUBMIT_TIMEOUT. The submit lease must be longer, or a live submit is declared lost while it waits."""
    return failover_budget_s + longest_request_s(SUBMIT_TIMEOUT)


References = Sequence[tuple[StoredReference, bytes]]
# 401/402/403 refuse the account (its key, its balance), never the job.
ACCOUNT_REFUSALS = (401, 402, 403)
KEY_LIKE = re.compile(r"(sk|key|token)[-_][A-Za-z0-9*._\-]{4,}|Bearer\s+\S+", re.IGNORECASE)


@dataclass(frozen=True)
class Account:
    """One upstream account. `repr` hides the key so it can never reach a log line by accident; `name` is what
    a job records (never the key)."""

    family: str
    base_url: str
    api_key: str = field(repr=False)
    name: str = ""


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
    # Where the MP4 is, when the upstream hands out a link (seed 001's `video_url`): never fetched with our key.
    content_url: str | None = None


@dataclass(frozen=True)
class ContentRequest:
    """How to fetch the finished MP4. `headers` may hold the account key: never log or store it."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class StreamUpdate:
    """What a streaming upstream said so far: its task id once known, progress, and at the end the link (or a
    failure) and the token usage."""

    task_id: str | None = None
    progress: int | None = None
    content_url: str | None = None
    failed: str | None = None
    usage: dict[str, int] | None = None


class Adapter(Protocol):
    account: Account

    def submit(self, job: Job, references: References = ()) -> SubmitResult:
        """Sends the job. `references` are the prepared inputs with their bytes, in upload order; the relay reads
        them from S3, so adapters never touch storage."""
        ...

    def poll(self, job: Job) -> PollResult: ...

    def content_request(self, job: Job) -> ContentRequest: ...


class StreamingAdapter(Adapter, Protocol):
    def stream(self, job: Job, references: References = ()) -> Iterator[StreamUpdate]:
        """Opens the generation stream and yields what it says until it ends. Raises UpstreamUnavailable when
        refused before anything could have been accepted, UpstreamAmbiguous when cut after it was."""
        ...


# -- accounts ---------------------------------------------------------------------------------------------------


# How long a key read from SSM or Secrets Manager is trusted before it is read again: a rotated key is picked up
# within this time by every warm container, with no cold start needed.
KEY_MAX_AGE_S = 300


def _ssm_parameter(name: str) -> str:
    # Powertools caches per name for max_age; imported here because only the cloud configuration needs it.
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_parameter(name, decrypt=True, max_age=KEY_MAX_AGE_S))


def _secret(secret_id: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_secret(secret_id, max_age=KEY_MAX_AGE_S))


def _key_of(entry: dict[str, str], where: str) -> str:
    """An account's key: given directly (local), or the name of an SSM SecureString parameter or a Secrets
    Manager secret holding it (cloud; read again after KEY_MAX_AGE_S, so a rotation needs no redeploy)."""
    if entry.get("api_key"):
        return entry["api_key"]
    if entry.get("api_key_parameter"):
        return _ssm_parameter(entry["api_key_parameter"])
    if entry.get("api_key_secret"):
        return _secret(entry["api_key_secret"])
    raise RuntimeError(f"{where}: no api_key, api_key_parameter or api_key_secret")


def accounts_for(family: str, env: dict[str, str] | None = None) -> list[Account]:
    """The family's accounts in failover order. The first comes from `VIDRELAY_UPSTREAM_<FAMILY>_BASE_URL` and
    `..._API_KEY` / `..._API_KEY_PARAMETER` / `..._API_KEY_SECRET`; more follow from `..._ACCOUNTS` (a JSON list
    of `{"name", "base_url", "api_key" | "api_key_parameter" | "api_key_secret"}`) or from the Secrets Manager
    secret named by `VIDRELAY_UPSTREAM_ACCOUNTS_SECRET` (a JSON object of such lists by family)."""
    env = dict(os.environ if env is None else env)
    prefix = f"VIDRELAY_UPSTREAM_{family.upper()}_"
    entries: list[dict[str, str]] = []
    base_url = env.get(prefix + "BASE_URL", "").strip()
    if base_url:
        entries.append(
            {
                "name": env.get(prefix + "ACCOUNT_NAME") or f"{family}-1",
                "base_url": base_url,
                "api_key": env.get(prefix + "API_KEY", ""),
                "api_key_parameter": env.get(prefix + "API_KEY_PARAMETER", ""),
                "api_key_secret": env.get(prefix + "API_KEY_SECRET", ""),
            }
        )
    extra = env.get(prefix + "ACCOUNTS", "").strip()
    if extra:
        entries.extend(_entries(json.loads(extra), prefix + "ACCOUNTS"))
    secret_id = env.get("VIDRELAY_UPSTREAM_ACCOUNTS_SECRET", "").strip()
    if secret_id:
        by_family = json.loads(_secret(secret_id))
        if isinstance(by_family, dict):
            entries.extend(_entries(by_family.get(family, []), "VIDRELAY_UPSTREAM_ACCOUNTS_SECRET"))
    if not entries:
        raise RuntimeError(f"no upstream account for {family}: set {prefix}BASE_URL")
    accounts: list[Account] = []
    for number, entry in enumerate(entries, start=1):
        name = entry.get("name") or f"{family}-{number}"
        try:
            key = _key_of(entry, f"{family} account {name}")
        except Exception as exc:
            if number == 1:  # the primary account is the configuration itself: fail loudly
                raise
            # A backup account whose key cannot be read (a wrong parameter name, no permission) must not take
            # the family down with it: it is left out, loudly.
            from ..obs import logger

            logger.error(
                "upstream account left out: its key cannot be read",
                extra={"account": name, "error": type(exc).__name__},
            )
            continue
        accounts.append(Account(family=family, base_url=entry["base_url"].rstrip("/"), api_key=key, name=name))
    return accounts


def _entries(value: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not all(isinstance(e, dict) and e.get("base_url") for e in value):
        raise RuntimeError(f"{where} must be a JSON list of objects with base_url and a key")
    return [{str(k): str(v) for k, v in e.items()} for e in value]


def account_for(family: str, env: dict[str, str] | None = None) -> Account:
    """The family's first account."""
    return accounts_for(family, env)[0]


# -- HTTP rules shared by the dialects ------------------------------------------------------------------------


def send_submit(client: httpx.Client, url: str, **kwargs: Any) -> httpx.Response:
    """POSTs a submit. A failure to connect is safe to retry; anything after the body may have been sent is not."""
    try:
        return client.post(url, timeout=SUBMIT_TIMEOUT, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise UpstreamUnavailable(f"upstream unreachable: {type(exc).__name__}", code="upstream_unavailable") from None
    except httpx.TransportError as exc:
        # The body may have been sent (a timeout or a reset while waiting for the answer): the upstream may
        # have created and will bill the task. Never resubmit blindly.
        raise UpstreamAmbiguous(
            f"no answer from the upstream after the request was sent ({type(exc).__name__})",
            code="upstream_submit_unknown",
        ) from None


def submitted(response: httpx.Response, *id_fields: str) -> SubmitResult:
    """The task a submit answer names, read from the first of `id_fields` present. A refusal raises (see
    check_submit_answer); an acceptance without an id may still have created a task, so it is ambiguous."""
    data = json_of(response)
    task_id = next((data[name] for name in id_fields if data.get(name)), None)
    check_submit_answer(response, data, task_id)
    if not isinstance(task_id, str) or not task_id:
        raise UpstreamAmbiguous(f"upstream accepted without a {id_fields[0]}", code="upstream_submit_unknown")
    return SubmitResult(
        task_id=task_id, state=STATUS.get(str(data.get("status")), "queued"), progress=progress_of(data)
    )


def check_submit_answer(response: httpx.Response, data: dict[str, Any], task_id: Any) -> None:
    """Raises for a refused submit: 429 and 5xx without a task id cannot have been billed (retry, or fail over
    to the next account); a 5xx that names a task may have; any other 4xx is the request's own fault."""
    if response.status_code == 429:
        raise UpstreamUnavailable(
            "upstream rate limit", code="upstream_rate_limited", status=429, retry_after_s=retry_after(response)
        )
    if response.status_code in ACCOUNT_REFUSALS:
        # The account itself is refused (key, balance, group): no task exists, and another account may take it.
        raise UpstreamUnavailable(
            f"the upstream refused the account (HTTP {response.status_code})",
            code="upstream_account_refused",
            status=response.status_code,
        )
    if response.status_code >= 500:
        if isinstance(task_id, str) and task_id:
            raise UpstreamAmbiguous(
                "upstream error after creating the task", code="upstream_submit_unknown", status=response.status_code
            )
        raise UpstreamUnavailable(
            f"upstream answered {response.status_code}",
            code="upstream_unavailable",
            status=response.status_code,
            retry_after_s=retry_after(response),
        )
    if response.status_code >= 400:
        raise UpstreamRejected(error_message(data, response), code="upstream_rejected", status=response.status_code)


def get_task(client: httpx.Client, account: Account, url: str) -> tuple[dict[str, Any], str, UpstreamState]:
    """GETs a task's status the way every polling dialect answers it: the body, the upstream's status word and
    that word normalised. A 404 means the task (and its result) is gone; a refusal of the moment is retried."""
    try:
        response = client.get(url, headers=bearer(account), timeout=POLL_TIMEOUT)
    except httpx.TransportError as exc:
        raise UpstreamUnavailable(f"poll failed: {type(exc).__name__}", code="upstream_unavailable") from None
    if response.status_code == 404:
        # Seed 002: results are kept one day; after that the task answers 404.
        raise UpstreamResultGone("the upstream no longer has this task", code="upstream_expired", status=404)
    check_poll_answer(response)
    data = json_of(response)
    if response.status_code >= 400:
        raise UpstreamRejected(error_message(data, response), code="upstream_rejected", status=response.status_code)
    raw = str(data.get("status", ""))
    state = STATUS.get(raw)
    if state is None:
        raise UpstreamUnavailable(f"unknown upstream status {raw!r}", code="upstream_bad_status")
    return data, raw, state


def check_poll_answer(response: httpx.Response) -> None:
    # A refused account (a rotated key, say) does not mean the task failed: ask again until the job's age runs out.
    if response.status_code in (429, *ACCOUNT_REFUSALS) or response.status_code >= 500:
        raise UpstreamUnavailable(
            f"poll answered {response.status_code}",
            code="upstream_unavailable",
            status=response.status_code,
            retry_after_s=retry_after(response),
        )


def json_of(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def progress_of(data: dict[str, Any]) -> int:
    try:
        return max(0, min(100, int(data.get("progress") or 0)))
    except (TypeError, ValueError):
        return 0


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def error_message(data: dict[str, Any], response: httpx.Response) -> str:
    """The upstream's own words (they reach the Video object and events), with anything key-like blanked: an
    upstream may quote the key it was given ("Incorrect API key provided: sk-...")."""
    error = data.get("error")
    text = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    if not text:
        return f"upstream refused the job (HTTP {response.status_code})"
    return f"upstream refused the job: {redact(str(text))[:500]}"


def redact(text: str) -> str:
    return KEY_LIKE.sub("[redacted]", text)


def upstream_error(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """(code, message) of a failed task's `error`, which may be absent (seed 002: "not always present")."""
    error = data.get("error") if isinstance(data.get("error"), dict) else None
    if not error:
        return None, None
    return (str(error["code"]) if error.get("code") else None, str(error["message"]) if error.get("message") else None)


def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.api_key}"}
