"""The SSRF guard, with a fake resolver so no test reaches the network."""

from __future__ import annotations

import httpx
import pytest
from vidrelay_core.ssrf import ANY_PORT, WEBHOOK_PORTS, UrlRejected, check_url
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
        check_url(url, ports=WEBHOOK_PORTS, resolver=resolver_to("93.184.216.34"))


def test_name_resolving_to_a_private_address_is_refused():
    with pytest.raises(UrlRejected, match="private"):
        check_url("https://internal.example.com/hook", ports=WEBHOOK_PORTS, resolver=resolver_to("10.1.2.3"))


def test_one_private_address_among_public_ones_is_refused():
    with pytest.raises(UrlRejected):
        check_url("https://mixed.example.com/", ports=WEBHOOK_PORTS, resolver=resolver_to("93.184.216.34", "127.0.0.1"))


def test_unresolvable_name_is_refused():
    def fail(host, port):
        raise OSError("nxdomain")

    with pytest.raises(UrlRejected, match="does not resolve"):
        check_url("https://nope.invalid/", ports=WEBHOOK_PORTS, resolver=fail)


def test_public_name_is_pinned_to_the_checked_address_with_sni_on_the_hostname():
    checked = check_url("https://hooks.example.com/in?x=1", ports=WEBHOOK_PORTS, resolver=resolver_to("93.184.216.34"))
    target, headers, extensions = checked.pinned()
    assert target == "https://93.184.216.34:443/in?x=1"
    assert headers == {"Host": "hooks.example.com"}
    assert extensions == {"sni_hostname": "hooks.example.com"}


def test_loopback_http_allowed_only_in_local_mode():
    with pytest.raises(UrlRejected):
        check_url("http://127.0.0.1:8788/h", ports=WEBHOOK_PORTS)
    assert check_url("http://127.0.0.1:8788/h", ports=WEBHOOK_PORTS, allow_loopback=True).address == "127.0.0.1"
    # Local mode still refuses the metadata address and private ranges.
    with pytest.raises(UrlRejected):
        check_url("http://169.254.169.254/", ports=WEBHOOK_PORTS, allow_loopback=True)


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "127.1", "0", "017700000001", "0xa9.0xfe.0xa9.0xfe"],
)
def test_numeric_host_forms_are_read_as_addresses_not_names(host):
    # The resolver would say "public": the guard must decide from the literal itself.
    with pytest.raises(UrlRejected, match="private"):
        check_url(f"https://{host}/hook", ports=WEBHOOK_PORTS, resolver=resolver_to("93.184.216.34"))


def test_names_made_of_hex_letters_are_still_names():
    assert (
        check_url("https://cafe.be/hook", ports=WEBHOOK_PORTS, resolver=resolver_to("93.184.216.34")).address
        == "93.184.216.34"
    )


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


# Once accepted: forms that only `ipaddress.is_global` judged, differently on 3.11/3.12 and 3.13.
def endpoint_url(url: str, *, allow_loopback: bool) -> str:
    """POST /v1/webhook_endpoints' `url`, validated as the api validates it."""
    from vidrelay_core.contract import RequestContext, validated
    from vidrelay_core.contract.webhooks import CreateEndpointBody

    body = validated(CreateEndpointBody, {"url": url}, RequestContext(allow_loopback_urls=allow_loopback))
    return body.url


FINDINGS = ["https://[64:ff9b:1::a9fe:a9fe]/", "https://[64:ff9b:1::7f00:1]/", "https://[::ffff:0:7f00:1]/"]


@pytest.mark.parametrize("url", FINDINGS)
def test_nat64_local_use_and_siit_forms_are_refused_everywhere_a_url_is_given(url):
    from vidrelay_core.contract import parse_create
    from vidrelay_core.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as webhook:
        parse_create({"prompt": "x", "webhook_url": url})
    assert webhook.value.param == "webhook_url" and "private" in webhook.value.message
    with pytest.raises(InvalidRequest) as endpoint:
        endpoint_url(url, allow_loopback=False)
    assert endpoint.value.param == "url"
    with pytest.raises(InvalidRequest) as image:
        parse_create({"prompt": "x", "input_reference": {"image_url": url + "a.png"}})
    assert "private" in image.value.message
    # Local mode relaxes loopback on this host only, not forms that are routed elsewhere.
    with pytest.raises(InvalidRequest):
        parse_create({"prompt": "x", "webhook_url": url}, allow_loopback_urls=True)


def test_a_webhook_url_on_another_port_is_refused_naming_the_port_and_the_allowed_ones():
    from vidrelay_core.contract import parse_create
    from vidrelay_core.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as caught:
        parse_create({"prompt": "x", "webhook_url": "https://93.184.216.34:8443/hook"})
    assert caught.value.param == "webhook_url"
    assert "'https://93.184.216.34:8443/hook' was given" in caught.value.message
    assert "uses port 8443; allowed ports are 443 and 80" in caught.value.message


def test_an_endpoint_url_on_another_port_is_refused_even_in_local_mode_unless_it_is_loopback():
    from vidrelay_core.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="uses port 22; allowed ports are 443 and 80") as caught:
        endpoint_url("https://93.184.216.34:22/", allow_loopback=True)
    assert caught.value.param == "url"
    assert endpoint_url("http://127.0.0.1:8788/hook", allow_loopback=True) == "http://127.0.0.1:8788/hook"
    assert endpoint_url("https://93.184.216.34:80/hook", allow_loopback=False) == "https://93.184.216.34:80/hook"


def test_reference_images_keep_any_port():
    from vidrelay_core.contract import parse_create

    request = parse_create({"prompt": "x", "input_reference": {"image_url": "https://93.184.216.34:8443/a.png"}})
    assert request.reference is not None and request.reference.image_url == "https://93.184.216.34:8443/a.png"


def test_delivery_to_a_port_outside_the_webhook_ports_is_refused_without_a_request():
    seen: list[httpx.Request] = []
    answer = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200, stream=httpx.ByteStream(b"")))
    with httpx.Client(transport=answer) as client:
        attempt = deliver(
            client,
            "https://hooks.example.com:6379/in",
            secrets_=[new_secret()],
            msg_id="evt_1",
            body="{}",
            allow_loopback=False,
            resolver=resolver_to("93.184.216.34"),
        )
    assert not attempt.succeeded and attempt.status is None
    assert attempt.error == "url refused: uses port 6379; allowed ports are 443 and 80"
    assert seen == []


def test_the_port_rule_is_the_callers_choice():
    with pytest.raises(UrlRejected, match="uses port 8443"):
        check_url("https://hooks.example.com:8443/", ports=WEBHOOK_PORTS, resolver=resolver_to("93.184.216.34"))
    checked = check_url("https://hooks.example.com:8443/", ports=ANY_PORT, resolver=resolver_to("93.184.216.34"))
    assert checked.pinned()[0] == "https://93.184.216.34:8443/"
    with pytest.raises(UrlRejected, match="from 1 to 65535"):
        check_url("https://hooks.example.com:0/", ports=ANY_PORT, resolver=resolver_to("93.184.216.34"))


def test_a_refused_port_is_decided_before_any_lookup_in_the_cloud():
    def must_not_resolve(host, port):
        raise AssertionError("resolved")

    with pytest.raises(UrlRejected, match="uses port 25"):
        check_url("https://mail.example.com:25/", ports=WEBHOOK_PORTS, resolver=must_not_resolve)


def test_an_ipv6_literal_is_pinned_in_its_normal_form():
    checked = check_url("https://[2606:4700:4700:0:0:0:0:1111]/in", ports=WEBHOOK_PORTS)
    assert checked.pinned()[0] == "https://[2606:4700:4700::1111]:443/in"


def test_a_numeric_host_is_sent_in_its_dotted_form():
    checked = check_url("https://0x5db8d822/in", ports=WEBHOOK_PORTS)
    target, headers, extensions = checked.pinned()
    assert (target, headers, extensions) == (
        "https://93.184.216.34:443/in",
        {"Host": "93.184.216.34"},
        {"sni_hostname": "93.184.216.34"},
    )
