"""The SSRF guard's verdict table: hostile URL forms that must be refused and legitimate ones that must pass.

Plain data (JSON-serialisable), so the same table can be handed to the guard on every Python interpreter.
Each case is a URL checked as a webhook target (ports 443 and 80, cloud rules) unless it says otherwise:
`answers` is what the resolver returns for a name (default: one public address), `ports` is "webhook" or
"any" (reference images), `local` turns on the local stack's loopback exception.
"""

from __future__ import annotations

from typing import Any

PUBLIC_V4 = "93.184.216.34"

# The three forms that were accepted before the guard became an allow-list.
FINDINGS = [
    "https://[64:ff9b:1::a9fe:a9fe]/",  # local-use NAT64 form of the metadata address
    "https://[64:ff9b:1::7f00:1]/",  # local-use NAT64 form of loopback
    "https://[::ffff:0:7f00:1]/",  # SIIT form of loopback
]


POINTS = "points to a private, loopback, link-local or reserved address"
# Forms refused for their shape rather than their address.
SHAPE_REASONS = {
    "4294967296": "not a valid IPv4 address",
    "08.0.0.1": "not a valid IPv4 address",
    "256.0.0.1": "not a valid IPv4 address",
    "1.2.3.4.5": "not a valid IPv4 address",
    "example.0x7f": "not a valid IPv4 address",
    "fe80::1%25eth0": "not an IPv6 address without a zone",
    "[]": "does not resolve",
}


def _because(given: str) -> str:
    return SHAPE_REASONS.get(given, POINTS)


def _refused(url: str, why: str, because: str = "", **options: Any) -> dict[str, Any]:
    """`because`: a part of the reason the guard must give (refused for the right reason, not by accident)."""
    return {"url": url, "why": why, "allowed": False, "because": because, **options}


def _allowed(url: str, why: str, **options: Any) -> dict[str, Any]:
    return {"url": url, "why": why, "allowed": True, **options}


def _name(answer: str | list[str]) -> list[str]:
    return answer if isinstance(answer, list) else [answer]


HOSTILE_V4 = [
    ("0.0.0.0", "unspecified: the local host on Linux"),
    ("0.1.2.3", "this network"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private, top of the block"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.254", "CGNAT, top of the block"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback, top of the block"),
    ("169.254.169.254", "the metadata address"),
    ("169.254.170.2", "ECS task credentials"),
    ("169.254.169.253", "the VPC DNS resolver"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private, top of the block"),
    ("192.0.0.1", "IETF protocol assignments"),
    ("192.0.0.9", "PCP anycast"),
    ("192.0.0.170", "NAT64 discovery"),
    ("192.0.2.1", "TEST-NET-1"),
    ("192.31.196.1", "AS112"),
    ("192.52.193.1", "AMT"),
    ("192.88.99.1", "6to4 relay anycast"),
    ("192.168.1.1", "private"),
    ("192.175.48.1", "AS112 direct delegation"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.254", "benchmarking, top of the block"),
    ("198.51.100.1", "TEST-NET-2"),
    ("203.0.113.1", "TEST-NET-3"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast (SSDP)"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "limited broadcast"),
]

HOSTILE_V4_SPELLINGS = [
    ("2130706433", "loopback, decimal"),
    ("0x7f000001", "loopback, hex"),
    ("0X7F.0.0.1", "loopback, upper-case hex part"),
    ("0x7f.1", "loopback, hex short form"),
    ("0177.0.0.1", "loopback, octal"),
    ("00000000000000000177.0.0.1", "loopback, octal with many leading zeros"),
    ("017700000001", "loopback, one octal number"),
    ("127.1", "loopback, two parts"),
    ("127.0.1", "loopback, three parts"),
    ("127.0.0.1.", "loopback, trailing dot"),
    ("0", "unspecified, one part"),
    ("0x", "unspecified, empty hex"),
    ("0xa9.0xfe.0xa9.0xfe", "metadata, hex parts"),
    ("0xa9fea9fe", "metadata, one hex number"),
    ("2852039166", "metadata, decimal"),
    ("0251.0376.0251.0376", "metadata, octal parts"),
    ("169.254.43518", "metadata, three parts"),
    ("0x0a.0.0.1", "private, mixed hex and decimal"),
    ("\uff11\uff12\uff17.\uff10.\uff10.\uff11", "loopback in full-width digits (IDNA folds them)"),
    ("127\u30020\u30020\u30021", "loopback with ideographic full stops"),
    ("4294967296", "one past 255.255.255.255: invalid, not wrapped to 0.0.0.0"),
    ("08.0.0.1", "invalid octal part"),
    ("256.0.0.1", "part above 255"),
    ("1.2.3.4.5", "five parts"),
    ("example.0x7f", "a name ending in a number: invalid, not a name"),
]

HOSTILE_V6 = [
    ("::1", "loopback"),
    ("0:0:0:0:0:0:0:1", "loopback, long form"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fe80::1%25eth0", "link-local with a zone"),
    ("fc00::1", "ULA"),
    ("fd00:ec2::254", "the metadata address over IPv6"),
    ("fec0::1", "site-local (deprecated)"),
    ("ff02::1", "multicast"),
    ("100::1", "discard-only"),
    ("100:0:0:1::1", "dummy prefix"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:7f00:1", "IPv4-mapped loopback, hex"),
    ("::ffff:a9fe:a9fe", "IPv4-mapped metadata"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("::ffff:0:0", "IPv4-mapped unspecified"),
    ("::ffff:0:a9fe:a9fe", "SIIT metadata"),
    ("::ffff:0:10.0.0.1", "SIIT private"),
    ("::127.0.0.1", "IPv4-compatible loopback"),
    ("::a9fe:a9fe", "IPv4-compatible metadata"),
    ("64:ff9b::7f00:1", "NAT64 loopback"),
    ("64:ff9b::a9fe:a9fe", "NAT64 metadata"),
    ("64:ff9b::10.0.0.1", "NAT64 private"),
    ("64:ff9b:1::5db8:d822", "local-use NAT64 of a public address: the layout is the operator's, refused whole"),
    ("64:ff9b:1:7f00:1::", "local-use NAT64, /48 layout of loopback"),
    ("2002:7f00:1::", "6to4 of loopback"),
    ("2002:a9fe:a9fe::1", "6to4 of the metadata address"),
    ("2002:c0a8:101::1", "6to4 of 192.168.1.1"),
    ("2002:c058:6301::1", "6to4 of the 6to4 relay anycast"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo, client loopback"),
    ("2001:0:4136:e378:8000:63bf:5601:5601", "Teredo, client the metadata address"),
    ("2001:0:a00:1:8000:63bf:a247:27dd", "Teredo, server private"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation (RFC 9637)"),
    ("3fff:fff::1", "documentation, top of 3fff::/20"),
    ("5f00::1", "SRv6 SIDs"),
    ("2001:1::1", "PCP anycast"),
    ("2001:1::2", "TURN anycast"),
    ("2001:2::1", "benchmarking"),
    ("2001:3::1", "AMT"),
    ("2001:4:112::1", "AS112"),
    ("2001:10::1", "ORCHID (deprecated)"),
    ("2001:20::1", "ORCHIDv2"),
    ("2001:30::1", "drone remote ID"),
    ("2001:1ff::1", "unassigned IETF protocol space"),
    ("2620:4f:8000::1", "AS112 direct delegation"),
    ("4000::1", "outside global unicast"),
    ("e000::1", "outside global unicast"),
]

HOSTILE_ANSWERS = [
    ("127.0.0.1", "a name for loopback"),
    ("10.1.2.3", "a name for a private address"),
    ([PUBLIC_V4, "127.0.0.1"], "one private answer among public ones"),
    (["2606:4700:4700::1111", "fd00::1"], "one ULA answer among public ones"),
    ("::ffff:169.254.169.254", "a name answering IPv4-mapped metadata"),
    ("64:ff9b::a9fe:a9fe", "a name answering NAT64 metadata (DNS64)"),
    ("64:ff9b:1::a9fe:a9fe", "a name answering local-use NAT64 metadata"),
    ("::ffff:0:7f00:1", "a name answering SIIT loopback"),
    ("fe80::1%eth0", "a name answering link-local with a zone"),
    ("not-an-address", "a resolver answer that is not an address"),
    ([], "no answer"),
]

HOSTILE_SHAPES = [
    _refused("http://example.com/hook", "plain http in the cloud", "scheme must be https"),
    _refused("ftp://example.com/hook", "ftp", "scheme must be https"),
    _refused("file:///etc/passwd", "file", "scheme must be https"),
    _refused("gopher://example.com:70/_", "gopher", "scheme must be https"),
    _refused("javascript:alert(1)", "javascript"),
    _refused("data:text/plain,x", "data"),
    _refused("https://user:pw@example.com/", "credentials", "credentials"),
    _refused("https://@example.com/", "empty credentials", "credentials"),
    _refused("https://evil.example\\@example.com/", "backslash before @"),
    _refused("https:///hook", "no host"),
    _refused("https://exa\tmple.com/", "tab in the host (dropped by some urlsplit releases)", "control characters"),
    _refused("https://example.com\n.evil/", "newline in the host", "control characters"),
    _refused("https://%31%32%37.0.0.1/", "percent-encoded host", "neither a valid host name"),
    _refused("https://[evil.example]/", "a name in brackets"),
    _refused("https://[127.0.0.1]/", "IPv4 in brackets"),
    _refused("https://[::1/", "unclosed bracket"),
    _refused(
        "https://example.com:8443/hook", "a port webhooks may not use", "uses port 8443; allowed ports are 443 and 80"
    ),
    _refused("https://example.com:22/", "SSH", "uses port 22"),
    _refused(f"https://{PUBLIC_V4}:6379/", "Redis on a public address", "uses port 6379"),
    _refused("https://example.com:0/", "port 0", "from 1 to 65535"),
    _refused("https://example.com:65536/", "port out of range", "from 1 to 65535"),
    _refused("https://example.com:+443/", "signed port", "from 1 to 65535"),
    _refused("https://example.com:80:443/", "two ports", "from 1 to 65535"),
    _refused("https://[::1]:80:443/", "two ports after an IPv6 literal", "from 1 to 65535"),
    _refused("https://example.com:\uff14\uff14\uff13/", "full-width port digits", "from 1 to 65535"),
    _refused("https://" + "a" * 64 + ".example/", "label longer than 63", "neither a valid host name"),
    _refused("https://-evil.example/", "label starting with a hyphen", "neither a valid host name"),
    _refused("https://images.example.com:0/a.png", "port 0 for an image", "from 1 to 65535", ports="any"),
    _refused("http://169.254.169.254/latest/meta-data", "metadata stays refused locally", POINTS, local=True),
    _refused("http://[64:ff9b::7f00:1]:8788/", "NAT64 loopback is not this host's loopback", POINTS, local=True),
    _refused("http://[2002:7f00:1::]:8788/", "6to4 loopback is not this host's loopback", POINTS, local=True),
    _refused(
        f"https://{PUBLIC_V4}:8443/",
        "a public receiver keeps the port rule locally",
        "uses port 8443; allowed ports are 443 and 80 (any port on a loopback receiver)",
        local=True,
    ),
    _refused(
        "http://localhost:8788/",
        "a name answering loopback and public keeps the port rule",
        "uses port 8788",
        local=True,
        answers=["127.0.0.1", PUBLIC_V4],
    ),
]

LEGITIMATE_V4 = [
    PUBLIC_V4,
    "8.8.8.8",
    "1.1.1.1",
    "52.94.236.248",
    "11.0.0.1",
    "100.63.255.255",
    "100.128.0.1",
    "126.255.255.255",
    "128.0.0.1",
    "169.253.255.255",
    "169.255.0.1",
    "172.15.255.255",
    "172.32.0.1",
    "191.255.255.255",
    "192.0.1.1",
    "192.0.3.1",
    "192.88.98.1",
    "192.169.0.1",
    "198.17.255.255",
    "198.20.0.1",
    "203.0.112.1",
    "203.0.114.1",
    "223.255.255.254",
]

LEGITIMATE_V6 = [
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001:82a::200e",
    "2600:1f18:abcd::1",
    "2400:cb00:2048:1::c629:d7a2",
    "2c0f:fb50:4003::1",
    "2001:200::1",
    "2003::1",
    "3ffe::1",
    "3fff:1000::1",
    "2001:67c:2e8:22::c100:68b",
    "2a03:2880:f12f:83:face:b00c::25de",
    "2620:4f:8001::1",
    "2002:5db8:d822::1",  # 6to4 of a public address
    "2001:0:4136:e378:8000:63bf:a247:27dd",  # Teredo: public server, public client
    "::ffff:93.184.216.34",  # IPv4-mapped public
    "::ffff:0:5db8:d822",  # SIIT public
    "::5db8:d822",  # IPv4-compatible public
    "64:ff9b::5db8:d822",  # NAT64 well-known prefix: what DNS64 answers in an IPv6-only subnet
]

LEGITIMATE_SHAPES = [
    _allowed("https://hooks.example.com/in", "a public name"),
    _allowed("HTTPS://Hooks.Example.COM/in", "upper case"),
    _allowed("https://hooks.example.com./in", "a trailing dot"),
    _allowed("https://hooks.example.com:443/in", "the https port written out"),
    _allowed("https://hooks.example.com:80/in", "port 80"),
    _allowed("https://hooks.example.com:/in", "an empty port"),
    _allowed("https://b\u00fccher.example/in", "an internationalised name"),
    _allowed("https://cafe.be/in", "a name made of hex letters"),
    _allowed("https://deadbeef/in", "hex without 0x is a name"),
    _allowed("https://_acme.example.com/in", "an underscore label"),
    _allowed("https://hooks.example.com/in", "a name with v6 answers", answers=["2606:4700:4700::1111"]),
    _allowed("https://hooks.example.com/in", "v4 and v6 answers", answers=[PUBLIC_V4, "2001:4860:4860::8888"]),
    _allowed("https://images.example.com:8443/a.png", "an image on any port", ports="any"),
    _allowed(f"https://{PUBLIC_V4}:9000/a.png", "an object store port for an image", ports="any"),
    _allowed("http://127.0.0.1:8788/hook", "a loopback receiver locally", local=True),
    _allowed("http://127.0.0.1:9/hook", "any loopback port locally", local=True),
    _allowed("http://[::1]:8788/hook", "IPv6 loopback locally", local=True),
    _allowed("http://[::ffff:127.0.0.1]:8788/", "IPv4-mapped loopback is this host locally", local=True),
    _allowed("http://localhost:8788/hook", "a name for loopback locally", local=True, answers=["127.0.0.1", "::1"]),
    _allowed(f"http://{PUBLIC_V4}/hook", "plain http locally", local=True),
]


def cases() -> list[dict[str, Any]]:
    table: list[dict[str, Any]] = []
    table += [_refused(url, "finding: accepted before", POINTS) for url in FINDINGS]
    table += [_refused(f"https://{host}/hook", why, POINTS) for host, why in HOSTILE_V4]
    table += [_refused(f"https://{host}/hook", why, _because(host)) for host, why in HOSTILE_V4_SPELLINGS]
    table += [_refused(f"https://[{address}]/hook", why, _because(address)) for address, why in HOSTILE_V6]
    table += [
        _refused("https://hooks.example.com/in", why, _because(str(answer)), answers=_name(answer))
        for answer, why in HOSTILE_ANSWERS
    ]
    table += HOSTILE_SHAPES
    table += [_allowed(f"https://{address}/in", "public IPv4 literal") for address in LEGITIMATE_V4]
    table += [_allowed(f"https://[{address}]/in", "public IPv6 literal") for address in LEGITIMATE_V6]
    table += [_allowed("https://hooks.example.com/in", "a name answering it", answers=[a]) for a in LEGITIMATE_V6]
    table += LEGITIMATE_SHAPES
    return table
