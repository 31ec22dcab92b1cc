"""Under `vidrelay local --strict-urls` the cloud's SSRF rules apply: hostile webhook targets are refused at once.

Every form is sent as a job's `webhook_url` and as a webhook endpoint's `url`; each must be a 400 naming the
field, and nothing may be stored or sent upstream.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import LocalStackProcess

pytestmark = pytest.mark.e2e

HOSTILE = [
    "https://169.254.169.254/latest/meta-data/iam/security-credentials/",  # the metadata address
    "https://[fd00:ec2::254]/latest/meta-data/",  # the metadata address over IPv6 (ULA)
    "https://127.0.0.1/hook",  # loopback
    "https://127.1/hook",  # loopback, short form
    "https://[::1]/hook",  # loopback v6
    "https://10.0.0.8/hook",  # private
    "https://172.16.5.4/hook",
    "https://192.168.1.20/hook",
    "https://100.64.0.1/hook",  # CGNAT
    "https://169.254.10.10/hook",  # link-local v4
    "https://[fe80::1]/hook",  # link-local v6
    "https://[fc00::1]/hook",  # ULA
    "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "https://[::ffff:a9fe:a9fe]/hook",  # IPv4-mapped metadata, hex
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 form of the metadata address
    "https://[64:ff9b:1::a9fe:a9fe]/hook",  # local-use NAT64 form of the metadata address
    "https://[64:ff9b:1::7f00:1]/hook",  # local-use NAT64 form of loopback
    "https://[::ffff:0:7f00:1]/hook",  # SIIT form of loopback
    "https://[::127.0.0.1]/hook",  # IPv4-compatible loopback
    "https://[2002:a9fe:a9fe::]/hook",  # 6to4 form of the metadata address
    "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo with a loopback client
    "https://[2001:db8::1]/hook",  # documentation
    "https://[5f00::1]/hook",  # SRv6 segment identifier
    "https://93.184.216.34:8443/hook",  # a public address on a port receivers may not use
    "https://2130706433/hook",  # decimal loopback
    "https://0x7f000001/hook",  # hex loopback
    "https://0177.0.0.1/hook",  # octal loopback
    "https://0xa9fea9fe/hook",  # hex metadata address
    "https://0.0.0.0/hook",  # unspecified
    "https://[::]/hook",
    "https://224.0.0.1/hook",  # multicast
    "https://240.0.0.1/hook",  # reserved
    "https://localhost/hook",  # a name for loopback
    "http://example.com/hook",  # plain http in the cloud
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "gopher://example.com:70/_",
    "https://user:secret@example.com/hook",  # credentials in the URL
    "https://does-not-resolve.invalid/hook",  # a name that does not resolve
]


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_webhook_targets_are_refused(strict_stack: LocalStackProcess, url: str) -> None:
    with strict_stack.http() as api:
        jobs_before = api.get("/videos", params={"limit": 100}).json()["data"]
        submits_before = strict_stack.sim_submits()
        body = {"model": "sora-2", "prompt": "x", "seconds": "4", "size": "1280x720", "webhook_url": url}
        response = api.post("/videos", json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == "webhook_url"
        assert url[:40] in error["message"]

        endpoint = api.post("/webhook_endpoints", json={"url": url})
        assert endpoint.status_code == 400, endpoint.text
        assert endpoint.json()["error"]["param"] == "url"

        assert api.get("/videos", params={"limit": 100}).json()["data"] == jobs_before
        assert api.get("/webhook_endpoints").json()["data"] == []
    assert strict_stack.sim_submits() == submits_before


def test_enough_hostile_forms_are_covered() -> None:
    assert len(HOSTILE) >= 30


def test_loopback_is_allowed_without_strict_urls(local_stack: LocalStackProcess) -> None:
    """The counterpart: the default local stack accepts a receiver on the laptop, so the refusals above come
    from --strict-urls, not from a guard that refuses everything."""
    with local_stack.http() as api:
        body = {"model": "sora-2", "prompt": "x", "seconds": "4", "size": "1280x720"}
        response = api.post("/videos", json={**body, "webhook_url": "http://127.0.0.1:9/hook"})
        assert response.status_code == 200, response.text
        refused = api.post("/videos", json={**body, "webhook_url": "http://169.254.169.254/latest/meta-data"})
        assert refused.status_code == 400  # the metadata address stays refused even locally
        # Any port on a loopback receiver, but a public one keeps the webhook ports.
        elsewhere = api.post("/webhook_endpoints", json={"url": "https://93.184.216.34:8443/hook"})
        assert elsewhere.status_code == 400, elsewhere.text
        error = elsewhere.json()["error"]
        assert error["param"] == "url"
        assert "port 8443" in error["message"] and "443 and 80" in error["message"]
