"""The SSRF guard, with a fake resolver so no test reaches the network."""

from __future__ import annotations

import pytest
from vidrelay_core.ssrf import UrlRejected, check_url


def resolver_to(*addresses: str):
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://10.0.0.5/",
        "https://172.16.3.4/",
        "https://192.168.1.1/",
        "https://100.64.0.1/",
        "https://[fe80::1]/",
        "https://[fd00::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:169.254.169.254]/",
        "https://0.0.0.0/",
        "https://224.0.0.1/",
        "http://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "https://user:pw@example.com/",
    ],
)
def test_hostile_literals_and_schemes_refused(url):
    with pytest.raises(UrlRejected):
        check_url(url, resolver=resolver_to("93.184.216.34"))


def test_name_resolving_to_a_private_address_is_refused():
    with pytest.raises(UrlRejected, match="private"):
        check_url("https://internal.example.com/hook", resolver=resolver_to("10.1.2.3"))


def test_one_private_address_among_public_ones_is_refused():
    with pytest.raises(UrlRejected):
        check_url("https://mixed.example.com/", resolver=resolver_to("93.184.216.34", "127.0.0.1"))


def test_unresolvable_name_is_refused():
    def fail(host, port):
        raise OSError("nxdomain")

    with pytest.raises(UrlRejected, match="does not resolve"):
        check_url("https://nope.invalid/", resolver=fail)


def test_public_name_is_pinned_to_the_checked_address_with_sni_on_the_hostname():
    checked = check_url("https://hooks.example.com/in?x=1", resolver=resolver_to("93.184.216.34"))
    target, headers, extensions = checked.pinned()
    assert target == "https://93.184.216.34:443/in?x=1"
    assert headers == {"Host": "hooks.example.com"}
    assert extensions == {"sni_hostname": "hooks.example.com"}


def test_loopback_http_allowed_only_in_local_mode():
    with pytest.raises(UrlRejected):
        check_url("http://127.0.0.1:8788/h")
    assert check_url("http://127.0.0.1:8788/h", allow_loopback=True).address == "127.0.0.1"
    # Local mode still refuses the metadata address and private ranges.
    with pytest.raises(UrlRejected):
        check_url("http://169.254.169.254/", allow_loopback=True)
