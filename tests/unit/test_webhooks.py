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
