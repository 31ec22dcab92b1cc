"""The SSRF guard: the one gate every outbound request to a user-given URL passes (webhooks, reference URLs).

Checked when the URL is given and again right before each request (DNS can change in between). The request
then goes to the address that was checked, not to a second lookup, with TLS still verified on the hostname.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

Resolver = Callable[[str, int], list[str]]

# Ranges no user URL may reach in the cloud. `is_global` alone misses some (e.g. 64:ff9b::/96 NAT64 forms of
# private v4 addresses), so they are listed and the v4 inside v6 forms are unwrapped first.
_BLOCKED_NETWORKS = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
        "2001:db8::/32",
        "100::/64",
    )
]
_LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]


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


def _unwrap(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address in ipaddress.ip_network("::/96") and int(address) > 1:
            # IPv4-compatible form (deprecated) such as ::127.0.0.1.
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_allowed(raw: str, *, allow_loopback: bool) -> bool:
    address = _unwrap(ipaddress.ip_address(raw.split("%", 1)[0]))
    if allow_loopback and any(address in net for net in _LOOPBACK if net.version == address.version):
        return True
    if any(address in net for net in _BLOCKED_NETWORKS if net.version == address.version):
        return False
    return bool(address.is_global)


_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")


def _numeric_ipv4(host: str) -> str | None:
    """The IPv4 address a numeric host form stands for (inet_aton's reading), or None for a name."""
    if not _NUMERIC_HOST.fullmatch(host) or not any(c.isdigit() for c in host):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def check_url(url: str, *, allow_loopback: bool = False, resolver: Resolver = system_resolver) -> CheckedUrl:
    """Parses, resolves and checks a user-given URL. Every resolved address must be allowed (a name with one
    private address among public ones is refused: the client library could pick either)."""
    if not isinstance(url, str) or len(url) > 2048:
        raise UrlRejected("must be a URL string of at most 2048 characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UrlRejected("is not a valid URL") from None
    scheme = parts.scheme.lower()
    # Plain http only where the local stack allows loopback targets; the cloud is https only.
    allowed_schemes = ("https", "http") if allow_loopback else ("https",)
    if scheme not in allowed_schemes:
        raise UrlRejected(f"scheme must be {' or '.join(allowed_schemes)}")
    if parts.username or parts.password:
        raise UrlRejected("must not carry credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRejected("has no host")
    try:
        # An internationalised name travels as its ASCII (punycode) form: in DNS, the Host header and SNI.
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise UrlRejected("host name is not a valid internationalised name") from None
    port = port or (443 if scheme == "https" else 80)
    numeric = _numeric_ipv4(host)
    try:
        # A literal address, in any of the forms the C library accepts (decimal 2130706433, hex 0x7f.1,
        # octal 0177.0.0.1, short 127.1): decided here, never left to a resolver that might read it otherwise.
        addresses = [numeric] if numeric else [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolver(host, port)
        except (OSError, UnicodeError):
            raise UrlRejected("host name does not resolve") from None
    if not addresses:
        raise UrlRejected("host name does not resolve")
    for address in addresses:
        if not address_allowed(address, allow_loopback=allow_loopback):
            raise UrlRejected("points to a private, loopback, link-local or reserved address")
    return CheckedUrl(url=url.strip(), scheme=scheme, host=host, port=port, address=addresses[0])
