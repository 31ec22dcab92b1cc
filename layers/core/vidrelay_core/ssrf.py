"""The SSRF guard: the one gate every outbound request to a user-given URL passes (webhooks, reference URLs).

Checked when the URL is given and again right before each request (DNS can change in between). The request
then goes to the address that was checked, not to a second lookup, with TLS still verified on the hostname.

Addresses are judged by an allow-list written out here, never by `ipaddress`'s `is_global`/`is_private`: those
answer differently from one Python release to the next (3.13 changed several ranges), and the guard must give the
same answer on every interpreter the relay runs on. Only parsing and integer arithmetic are taken from the
standard library. This module imports nothing but the standard library, so its verdicts can be checked on any
interpreter by loading this one file.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The ports a webhook receiver may listen on. Anything else would let a caller aim signed POSTs (and, through the
# endpoint test, its timing) at SSH, databases or admin consoles on public hosts.
WEBHOOK_PORTS: frozenset[int] = frozenset({443, 80})
# For URLs where any port is legitimate (reference images: CDNs and object stores serve on their own ports).
ANY_PORT: None = None


def _networks(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


# Every block of the IANA IPv4 special-purpose registry, plus multicast and the reserved space. An IPv4 address
# is allowed only outside all of them. Blocks the registry calls "globally reachable" are refused as well: they
# hold anycast protocol services and DNS sinks, never a webhook receiver or an image host.
_IPV4_REFUSED = _networks(
    "0.0.0.0/8",  # "this network"; connecting to 0.0.0.0 reaches the local host on Linux
    "10.0.0.0/8",  # private
    "100.64.0.0/10",  # shared address space (CGNAT): the provider's side of a NAT
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local: the metadata address 169.254.169.254, ECS credentials 169.254.170.2, DNS
    "172.16.0.0/12",  # private
    "192.0.0.0/24",  # IETF protocol assignments: DS-Lite, NAT64 discovery, PCP and TURN anycast
    "192.0.2.0/24",  # documentation (TEST-NET-1)
    "192.31.196.0/24",  # AS112 DNS sink
    "192.52.193.0/24",  # AMT relay anycast
    "192.88.99.0/24",  # 6to4 relay anycast (deprecated): a relay, not a host
    "192.168.0.0/16",  # private
    "192.175.48.0/24",  # AS112 direct-delegation DNS sink
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation (TEST-NET-2)
    "203.0.113.0/24",  # documentation (TEST-NET-3)
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, with 255.255.255.255 (limited broadcast)
)

# IPv6 is allowed only inside global unicast, minus the special-purpose ranges that lie in it.
_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_IPV6_REFUSED_INSIDE_GLOBAL = _networks(
    # IETF protocol assignments. Teredo (2001::/32) is judged by its IPv4 addresses before this list applies;
    # the rest is benchmarking (2001:2::/48), ORCHID identifiers (2001:10::/28, 2001:20::/28) and drone ids
    # (2001:30::/28) that are not locators, and the PCP/TURN/DNS-SD anycast, AMT and AS112 services the
    # registry marks reachable: protocol endpoints, none of them a receiver. Unassigned parts stay refused so a
    # future assignment is not allowed before anyone looked at it.
    "2001::/23",
    "2001:db8::/32",  # documentation
    "2620:4f:8000::/48",  # AS112 direct-delegation DNS sink
    "3fff::/20",  # documentation (RFC 9637)
    # SRv6 segment identifiers (RFC 9602): instructions to routers, not hosts. Outside 2000::/3, so already
    # refused; listed so that widening the allow-list one day cannot let them in unnoticed.
    "5f00::/16",
)

_LOW_32 = 0xFFFFFFFF
# IPv6 forms that carry an IPv4 address in their low 32 bits; where they lead is where that IPv4 address leads.
_IPV6_EMBEDDING_LOW_32 = _networks(
    "::ffff:0:0/96",  # IPv4-mapped: the socket layer connects to the IPv4 address itself
    "::ffff:0:0:0/96",  # SIIT / IPv4-translated (RFC 2765)
    "::/96",  # IPv4-compatible (deprecated); :: and ::1 fall in 0.0.0.0/8 and are refused with it
    "64:ff9b::/96",  # NAT64 well-known prefix: DNS64 in IPv6-only subnets answers in it for IPv4-only hosts
)
# The local-use NAT64 prefix (RFC 8215) is refused whole, not judged by an embedded IPv4 address: the operator
# picks a prefix length from /48 to /96 inside it, and RFC 6052 places the IPv4 bits differently for each, so
# one address can read as a public IPv4 address in one layout and as 127.0.0.1 in another. It is also never
# globally reachable; a public host is reached through its own address or the well-known prefix above. Being
# outside 2000::/3 it would fall to the allow-list anyway: the explicit check says that this was decided.
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")  # 6to4: the IPv4 address of the site is bits 16..47
_TEREDO = ipaddress.IPv6Network("2001::/32")  # Teredo: server IPv4 in bits 32..63, client IPv4 inverted at 96..127

_IPV4_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_IPV6_LOOPBACK = ipaddress.IPv6Address("::1")
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


class UrlRejected(ValueError):
    """The URL may not be used; the message says why, without echoing anything secret."""


@dataclass(frozen=True)
class CheckedUrl:
    url: str
    scheme: str
    host: str
    port: int
    address: str

    def pinned(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """URL aimed at the checked address, the Host header, and httpx extensions keeping SNI and certificate
        checks on the hostname."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        netloc = f"{literal}:{self.port}"
        target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        default_port = 443 if self.scheme == "https" else 80
        host_header = self.host if self.port == default_port else f"{self.host}:{self.port}"
        if ":" in self.host and not self.host.startswith("["):
            host_header = f"[{self.host}]" if self.port == default_port else f"[{self.host}]:{self.port}"
        extensions = {"sni_hostname": self.host} if self.scheme == "https" else {}
        return target, {"Host": host_header}, extensions


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _ipv4_allowed(address: ipaddress.IPv4Address) -> bool:
    return not any(address in network for network in _IPV4_REFUSED)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 addresses an IPv6 form leads to, or None when it carries none."""
    value = int(address)
    if any(address in network for network in _IPV6_EMBEDDING_LOW_32):
        return [ipaddress.IPv4Address(value & _LOW_32)]
    if address in _SIX_TO_FOUR:
        return [ipaddress.IPv4Address((value >> 80) & _LOW_32)]
    if address in _TEREDO:
        # Packets go to the client's (inverted) address through the server's relay: both must be public.
        return [ipaddress.IPv4Address((value >> 64) & _LOW_32), ipaddress.IPv4Address(~value & _LOW_32)]
    return None


def _ipv6_allowed(address: ipaddress.IPv6Address) -> bool:
    if address in _NAT64_LOCAL_USE:
        return False
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return all(_ipv4_allowed(ipv4) for ipv4 in embedded)
    if address not in _IPV6_GLOBAL_UNICAST:
        return False
    return not any(address in network for network in _IPV6_REFUSED_INSIDE_GLOBAL)


def _is_loopback(address: IPAddress) -> bool:
    """This host's own loopback: 127/8, ::1 and the IPv4-mapped spelling of 127/8, which the socket layer
    connects to over IPv4. The NAT64, 6to4, Teredo, SIIT and compatible forms of 127.0.0.1 are not: they are
    routed away from this host, so local mode does not relax them."""
    if isinstance(address, ipaddress.IPv4Address):
        return address in _IPV4_LOOPBACK
    if address == _IPV6_LOOPBACK:
        return True
    return address in _IPV4_MAPPED and ipaddress.IPv4Address(int(address) & _LOW_32) in _IPV4_LOOPBACK


def _parse_address(raw: str) -> IPAddress | None:
    # An address with a zone (fe80::1%eth0) names an interface of this host: never a public target.
    if "%" in raw:
        return None
    try:
        return ipaddress.ip_address(raw)
    except ValueError:
        return None


def address_allowed(raw: str, *, allow_loopback: bool) -> bool:
    """Whether a connection to this address may be made; `allow_loopback` is the local stack's exception."""
    address = _parse_address(raw)
    if address is None:
        return False
    if allow_loopback and _is_loopback(address):
        return True
    if isinstance(address, ipaddress.IPv4Address):
        return _ipv4_allowed(address)
    return _ipv6_allowed(address)


# inet_aton's grammar, as getaddrinfo and most HTTP clients read it: one to four dot-separated parts, each
# decimal, 0x-hex or 0-octal; the last part fills the remaining bytes (127.1 is 127.0.0.1, 2130706433 too).
_NUMBER_PART = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")
_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _number(part: str) -> int | None:
    if not _NUMBER_PART.fullmatch(part):
        return None
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8) if all(c in "01234567" for c in part) else None
    return int(part)


def _numeric_ipv4(host: str) -> str | None:
    """The IPv4 address a numeric host form stands for, or None for a name. As in the URL standard, a host whose
    last label is a number is an address or invalid, never a name a resolver could read its own way."""
    labels = host.split(".")
    if not _NUMBER_PART.fullmatch(labels[-1]):
        return None
    numbers = [_number(label) for label in labels]
    if len(labels) > 4 or any(n is None for n in numbers):
        raise UrlRejected("host is not a valid IPv4 address")
    parts = [n for n in numbers if n is not None]
    *leading, last = parts
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(parts)):
        raise UrlRejected("host is not a valid IPv4 address")
    value = last
    for index, n in enumerate(leading):
        value |= n << (8 * (3 - index))
    return str(ipaddress.IPv4Address(value))


def _port(netloc: str, default: int) -> int:
    """The port as written, in ASCII digits only: `urlsplit` reads other Unicode digits on some releases."""
    hostport = netloc.rpartition("@")[2]
    text = hostport.rpartition("]")[2] if hostport.startswith("[") else hostport
    if ":" not in text:
        return default
    written = text.partition(":")[2]  # where urlsplit splits too; a second colon makes it no port at all
    if not written:
        return default
    if not re.fullmatch(r"[0-9]{1,5}", written) or not 0 < int(written) <= 65535:
        raise UrlRejected(f"port {written[:10]!r} is not a port number from 1 to 65535")
    return int(written)


def _host(parts_netloc: str, hostname: str) -> str:
    """The host as it goes to DNS, the Host header and SNI: a name in ASCII (punycode for an internationalised
    one) or an address literal, checked so that no reader of the URL can take it for something else."""
    if parts_netloc.rpartition("@")[2].startswith("["):
        address = _parse_address(hostname)
        if not isinstance(address, ipaddress.IPv6Address):
            raise UrlRejected("host in brackets is not an IPv6 address without a zone")
        return hostname
    host = hostname.rstrip(".")
    if not host:
        raise UrlRejected("has no host")
    if not host.isascii():
        try:
            # Also folds full-width digits and ideographic dots to ASCII, so the address check below sees them.
            host = host.encode("idna").decode("ascii").lower().rstrip(".")
        except UnicodeError:
            raise UrlRejected("host name is not a valid internationalised name") from None
    labels = host.split(".")
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise UrlRejected("host is neither a valid host name nor an IP address")
    return host


def _port_rule(ports: Collection[int], allow_loopback: bool) -> str:
    listed = " and ".join(str(p) for p in sorted(ports, reverse=True))
    return f"allowed ports are {listed}" + (" (any port on a loopback receiver)" if allow_loopback else "")


def check_url(
    url: str,
    *,
    ports: Collection[int] | None,
    allow_loopback: bool = False,
    resolver: Resolver = system_resolver,
) -> CheckedUrl:
    """Parses, resolves and checks a user-given URL. Every resolved address must be allowed (a name with one
    private address among public ones is refused: the client library could pick either).

    `ports` is the caller's choice, on purpose without a default: WEBHOOK_PORTS for receivers, ANY_PORT where
    any port is legitimate. With `allow_loopback` (the local stack) a loopback receiver may use any port."""
    if not isinstance(url, str) or len(url) > 2048:
        raise UrlRejected("must be a URL string of at most 2048 characters")
    url = url.strip()
    # urlsplit drops tabs and newlines on some releases and not on others: refuse them instead of guessing.
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise UrlRejected("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        raise UrlRejected("is not a valid URL") from None
    scheme = parts.scheme.lower()
    # Plain http only where the local stack allows loopback targets; the cloud is https only.
    allowed_schemes = ("https", "http") if allow_loopback else ("https",)
    if scheme not in allowed_schemes:
        raise UrlRejected(f"scheme must be {' or '.join(allowed_schemes)}")
    if "@" in parts.netloc:
        raise UrlRejected("must not carry credentials")
    if not hostname:
        raise UrlRejected("has no host")
    host = _host(parts.netloc, hostname)
    port = _port(parts.netloc, 443 if scheme == "https" else 80)
    port_refusal = None if ports is None or port in ports else f"uses port {port}; {_port_rule(ports, allow_loopback)}"
    if port_refusal and not allow_loopback:
        raise UrlRejected(port_refusal)
    # A literal address, in any of the forms the C library accepts (decimal 2130706433, hex 0x7f.1, octal
    # 0177.0.0.1, short 127.1): decided here, never left to a resolver that might read it otherwise.
    numeric = None if ":" in host else _numeric_ipv4(host)
    if numeric is not None:
        host = numeric  # the Host header and SNI carry the address as every reader reads it
        addresses = [numeric]
    elif ":" in host:
        addresses = [str(ipaddress.ip_address(host))]
    else:
        try:
            addresses = resolver(host, port)
        except (OSError, UnicodeError):
            raise UrlRejected("host name does not resolve") from None
    if not addresses:
        raise UrlRejected("host name does not resolve")
    for address in addresses:
        if not address_allowed(address, allow_loopback=allow_loopback):
            raise UrlRejected("points to a private, loopback, link-local or reserved address")
    # Local mode: a receiver on this host may listen anywhere; everything else keeps the caller's ports.
    if port_refusal and not all(_is_loopback(ipaddress.ip_address(a)) for a in addresses):
        raise UrlRejected(port_refusal)
    return CheckedUrl(url=url, scheme=scheme, host=host, port=port, address=addresses[0])
