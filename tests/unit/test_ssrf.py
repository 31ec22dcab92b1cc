"""The SSRF guard, with a fake resolver so no test reaches the network."""

from __future__ import annotations

import httpx
import pytest
from vidrelay_core.ssrf import UrlRejected, check_url
from vidrelay_core.webhooks import deliver, new_secret


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


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "127.1", "0", "017700000001", "0xa9.0xfe.0xa9.0xfe"],
)
def test_numeric_host_forms_are_read_as_addresses_not_names(host):
    # The resolver would say "public": the guard must decide from the literal itself.
    with pytest.raises(UrlRejected, match="private"):
        check_url(f"https://{host}/hook", resolver=resolver_to("93.184.216.34"))


def test_names_made_of_hex_letters_are_still_names():
    assert check_url("https://cafe.be/hook", resolver=resolver_to("93.184.216.34")).address == "93.184.216.34"


def test_dns_rebinding_between_check_and_connect_cannot_redirect_the_request():
    """The name answers public at the check and loopback afterwards: the request still goes to the checked
    address (one lookup, then a pinned connection), with Host and SNI on the name."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])
    lookups: list[str] = []

    def rebinding(host, port):
        lookups.append(host)
        return next(answers)

    seen: list[httpx.Request] = []

    def transport(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204, stream=httpx.ByteStream(b""))

    with httpx.Client(transport=httpx.MockTransport(transport)) as client:
        attempt = deliver(
            client,
            "https://hooks.example.com/in",
            secrets_=[new_secret()],
            msg_id="evt_1",
            body="{}",
            allow_loopback=False,
            resolver=rebinding,
        )
    assert attempt.succeeded
    assert lookups == ["hooks.example.com"]
    (request,) = seen
    assert request.url.host == "93.184.216.34"
    assert request.headers["host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"


def test_a_name_that_now_resolves_private_is_refused_at_delivery():
    answer = httpx.MockTransport(lambda r: httpx.Response(200, stream=httpx.ByteStream(b"")))
    with httpx.Client(transport=answer) as client:
        attempt = deliver(
            client,
            "https://hooks.example.com/in",
            secrets_=[new_secret()],
            msg_id="evt_1",
            body="{}",
            allow_loopback=False,
            resolver=resolver_to("169.254.169.254"),
        )
    assert not attempt.succeeded and attempt.status is None
    assert "refused" in (attempt.error or "")
