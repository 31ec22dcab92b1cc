"""Standard Webhooks signing and one delivery attempt (SPEC §6).

The signature is `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed by the base64 part of a `whsec_` secret,
which is what the `standardwebhooks` package and the OpenAI SDK's `webhooks.verify_signature` check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import httpx

from .ssrf import WEBHOOK_PORTS, Resolver, UrlRejected, check_url, system_resolver
from .timeouts import longest_request_s

TIMEOUT_S = 15.0  # the whole attempt, not each phase: see deliver()
# httpx times each phase on its own; these keep the sum near TIMEOUT_S, and the body read stops at the deadline.
PHASE_TIMEOUT = httpx.Timeout(connect=4.0, write=4.0, read=7.0, pool=2.0)
MAX_RESPONSE_BYTES = 4096


def longest_attempt_s() -> float:
    """How long one delivery attempt can take (every phase once: more than TIMEOUT_S, which only cuts the body
    read). The delivery lease must be longer, and the notifier's timeout must fit a batch of them."""
    return longest_request_s(PHASE_TIMEOUT)


_DIGITS = re.compile(r"[0-9]{1,10}")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secrets_: list[str], msg_id: str, timestamp: int, body: str) -> str:
    """One `v1,` signature per secret, space separated (several during a secret rotation)."""
    payload = f"{msg_id}.{timestamp}.{body}".encode()
    signatures = [
        "v1," + base64.b64encode(hmac.new(_key(s), payload, hashlib.sha256).digest()).decode() for s in secrets_
    ]
    return " ".join(signatures)


@dataclass(frozen=True)
class Attempt:
    succeeded: bool
    status: int | None
    error: str | None
    latency_ms: int
    retry_after_s: float | None = None


def deliver(
    client: httpx.Client,
    url: str,
    *,
    secrets_: list[str],
    msg_id: str,
    body: str,
    allow_loopback: bool,
    resolver: Resolver = system_resolver,
) -> Attempt:
    """One POST. 2xx succeeds; anything else (redirects included: never followed) fails."""
    started = time.monotonic()

    def done(ok: bool, status: int | None, error: str | None, retry_after: float | None = None) -> Attempt:
        return Attempt(ok, status, error, int((time.monotonic() - started) * 1000), retry_after)

    try:
        # Checked again at every attempt: the name may resolve elsewhere than when the URL was given.
        checked = check_url(url, ports=WEBHOOK_PORTS, allow_loopback=allow_loopback, resolver=resolver)
    except UrlRejected as exc:
        return done(False, None, f"url refused: {exc}")
    target, host_header, extensions = checked.pinned()
    timestamp = int(time.time())
    headers = {
        **host_header,
        "content-type": "application/json",
        "user-agent": "vidrelay-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets_, msg_id, timestamp, body),
    }
    deadline = started + TIMEOUT_S
    try:
        request = client.build_request(
            "POST", target, content=body.encode(), headers=headers, timeout=PHASE_TIMEOUT, extensions=extensions
        )
        response = client.send(request, stream=True, follow_redirects=False)
        try:
            # Read a little of the answer and drop the rest: a receiver can make us neither buffer megabytes
            # nor wait past the attempt's deadline by trickling bytes.
            read = 0
            for chunk in response.iter_raw(MAX_RESPONSE_BYTES):
                read += len(chunk)
                if read >= MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                    break
        finally:
            response.close()
    except httpx.TimeoutException:
        return done(False, None, "timeout")
    except httpx.TransportError as exc:
        return done(False, None, f"connection error: {type(exc).__name__}")
    except Exception as exc:  # anything else is this attempt failing, never the ledger left half-written
        return done(False, None, f"request failed: {type(exc).__name__}")
    ok = 200 <= response.status_code < 300
    return done(ok, response.status_code, None if ok else f"HTTP {response.status_code}", _retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (the delta form; an HTTP date is ignored). Never raises."""
    value = response.headers.get("retry-after", "").strip()
    return float(value) if _DIGITS.fullmatch(value) else None


def verify(secret: str, body: bytes, headers: dict[str, str], *, tolerance_s: int = 300) -> bool:
    """Checks a delivery the way a receiver should: known id/timestamp, fresh timestamp, one matching v1
    signature (constant-time compare)."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not msg_id or not _DIGITS.fullmatch(timestamp) or abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    expected = sign([secret], msg_id, int(timestamp), body.decode()).split(",", 1)[1]
    return any(
        hmac.compare_digest(sig.split(",", 1)[1], expected) for sig in signatures.split() if sig.startswith("v1,")
    )
