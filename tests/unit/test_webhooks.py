"""Signatures verify with the standardwebhooks package and with the OpenAI SDK's verifier."""

from __future__ import annotations

import json
import time

import pytest
from vidrelay_core.webhooks import new_secret, sign, verify


def signed(secret: str, body: str, msg_id: str = "evt_1") -> dict[str, str]:
    ts = int(time.time())
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sign([secret], msg_id, ts, body)}


def test_standardwebhooks_package_verifies():
    from standardwebhooks.webhooks import Webhook

    secret = new_secret()
    body = json.dumps({"id": "evt_1", "object": "event", "type": "video.completed", "data": {"id": "video_1"}})
    assert Webhook(secret).verify(body, signed(secret, body))["type"] == "video.completed"


def test_openai_sdk_verifies():
    from openai import OpenAI

    secret = new_secret()
    body = '{"id":"evt_1","object":"event","type":"video.completed","data":{"id":"video_1"}}'
    OpenAI(api_key="x", base_url="http://127.0.0.1:9/v1").webhooks.verify_signature(
        body, signed(secret, body), secret=secret
    )


def test_wrong_secret_or_tampered_body_fails():
    secret = new_secret()
    headers = signed(secret, "{}")
    assert verify(secret, b"{}", headers)
    assert not verify(new_secret(), b"{}", headers)
    assert not verify(secret, b'{"x":1}', headers)


def test_two_secrets_give_two_signatures_either_verifies():
    old, new = new_secret(), new_secret()
    ts = int(time.time())
    header = sign([old, new], "evt_2", ts, "{}")
    assert header.count("v1,") == 2
    for secret in (old, new):
        assert verify(secret, b"{}", {"webhook-id": "evt_2", "webhook-timestamp": str(ts), "webhook-signature": header})


@pytest.mark.parametrize("age", [301, -301])
def test_stale_timestamps_fail(age):
    secret = new_secret()
    ts = int(time.time()) - age
    headers = {"webhook-id": "e", "webhook-timestamp": str(ts), "webhook-signature": sign([secret], "e", ts, "{}")}
    assert not verify(secret, b"{}", headers)


def _deliver_to(handler, url: str = "https://hooks.example.com/in"):
    import httpx
    from vidrelay_core.webhooks import deliver

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        return deliver(
            client,
            url,
            secrets_=[new_secret()],
            msg_id="evt_1",
            body="{}",
            allow_loopback=False,
            resolver=lambda host, port: ["93.184.216.34"],
        )


def _answer(status: int, headers: dict[str, str] | None = None):
    import httpx

    # Raw header bytes, as they come off the wire (httpx reads them as latin-1).
    raw = [(k.encode(), v.encode("latin-1")) for k, v in (headers or {}).items()]
    return lambda request: httpx.Response(status, headers=raw, stream=httpx.ByteStream(b"ok"))


@pytest.mark.parametrize("value", ["\u00b2", "soon", "Wed, 21 Oct 2026 07:28:00 GMT", "-3", "1e9", ""])
def test_a_strange_retry_after_never_breaks_an_attempt(value: str) -> None:
    attempt = _deliver_to(_answer(200, {"retry-after": value}))
    assert attempt.succeeded and attempt.retry_after_s is None
    failed = _deliver_to(_answer(503, {"retry-after": value}))
    assert not failed.succeeded and failed.status == 503 and failed.retry_after_s is None


def test_retry_after_in_seconds_is_read() -> None:
    assert _deliver_to(_answer(429, {"retry-after": "120"})).retry_after_s == 120.0


def test_an_unexpected_error_is_a_failed_attempt_not_an_exception() -> None:
    def explode(request):
        raise ValueError("boom")

    attempt = _deliver_to(explode)
    assert not attempt.succeeded and attempt.status is None and "ValueError" in (attempt.error or "")


def test_an_internationalised_name_is_sent_as_punycode() -> None:
    seen = []

    def record(request):
        seen.append(request)
        return _answer(204)(request)

    attempt = _deliver_to(record, "https://bücher.example/in")
    assert attempt.succeeded
    assert seen[0].headers["host"] == "xn--bcher-kva.example"
    assert seen[0].extensions["sni_hostname"] == "xn--bcher-kva.example"


def test_verify_refuses_a_non_ascii_timestamp_instead_of_raising() -> None:
    assert (
        verify(new_secret(), b"{}", {"webhook-id": "x", "webhook-timestamp": "\u00b2", "webhook-signature": ""})
        is False
    )
