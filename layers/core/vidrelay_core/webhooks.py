"""Standard Webhooks signing and one delivery attempt (SPEC §6).

The signature is `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed by the base64 part of a `whsec_` secret,
which is what the `standardwebhooks` package and the OpenAI SDK's `webhooks.verify_signature` check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import httpx

from .ssrf import Resolver, UrlRejected, check_url, system_resolver

TIMEOUT_S = 15.0
MAX_RESPONSE_BYTES = 4096


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
        checked = check_url(url, allow_loopback=allow_loopback, resolver=resolver)
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
    try:
        request = client.build_request(
            "POST", target, content=body.encode(), headers=headers, timeout=TIMEOUT_S, extensions=extensions
        )
        response = client.send(request, stream=True, follow_redirects=False)
        try:
            # Read a little of the answer and drop the rest: a receiver cannot make us buffer megabytes.
            read = 0
            for chunk in response.iter_raw():
                read += len(chunk)
                if read >= MAX_RESPONSE_BYTES:
                    break
        finally:
            response.close()
    except httpx.TimeoutException:
        return done(False, None, "timeout")
    except httpx.TransportError as exc:
        return done(False, None, f"connection error: {type(exc).__name__}")
    retry_after = None
    if response.headers.get("retry-after", "").isdigit():
        retry_after = float(response.headers["retry-after"])
    ok = 200 <= response.status_code < 300
    return done(ok, response.status_code, None if ok else f"HTTP {response.status_code}", retry_after)


def verify(secret: str, body: bytes, headers: dict[str, str], *, tolerance_s: int = 300) -> bool:
    """Checks a delivery the way a receiver should: known id/timestamp, fresh timestamp, one matching v1
    signature (constant-time compare)."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not msg_id or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    expected = sign([secret], msg_id, int(timestamp), body.decode()).split(",", 1)[1]
    return any(
        hmac.compare_digest(sig.split(",", 1)[1], expected) for sig in signatures.split() if sig.startswith("v1,")
    )
