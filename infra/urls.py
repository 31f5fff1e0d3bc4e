"""Which URLs the service may fetch: the one rule against server-side request forgery.

A user names URLs (dataset items); training fetches them from inside the deployment, where loopback, private
networks and cloud metadata services (`169.254.169.254`, `fd00:ec2::254`) answer. Two checks, one rule:

- `check_url(url, allowed)` when a URL is written (dataset create/change): the scheme is http(s); the host is a
  plain DNS name or an IP literal; a literal address (in any spelling: `2130706433`, `0177.0.0.1`, `0x7f.1`,
  `[::ffff:127.0.0.1]`) must be public; a name must not be one that always means this machine or the metadata
  service (`localhost`, `*.localhost`, `metadata.google.internal`). No DNS here: what a name resolves to can
  change after it is written (and tests must not depend on the network).
- `check_fetch(url, allowed, resolve)` before every request the fetcher makes, the first and each redirect hop:
  `check_url`, then the name is resolved and EVERY address must be public. The fetcher must connect to one of
  the addresses it returns (not resolve again), so a name cannot answer a public address to the check and a
  private one to the connection (DNS rebinding).

`allowed` (AIDRAW_URL_ALLOWED_HOSTS) lists host names and networks (CIDR) that may be private, for a
deployment's own file server: a listed name is fetched whatever it resolves to; a listed network allows its
addresses.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Iterable[str]]

SCHEMES = ("http", "https")
# Names that always mean this machine or a cloud's metadata service, whatever a resolver says.
FORBIDDEN_NAMES = frozenset({"localhost", "metadata", "metadata.google.internal", "instance-data"})
FORBIDDEN_SUFFIXES = (".localhost",)
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")
_IPV4_PART = re.compile(r"0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*")
# IPv6 ranges that carry an IPv4 address in their low 32 bits (NAT64, IPv4-compatible).
_EMBEDDING = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("::/96"))


class UrlRefused(ValueError):
    """The URL may not be fetched; the message says why, in words a client can act on."""


@dataclass(frozen=True)
class AllowList:
    """Hosts and networks that may be private (AIDRAW_URL_ALLOWED_HOSTS)."""

    names: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """Entries are host names or networks (`10.0.0.0/8`, `fd00::/8`, a single address); ValueError names
        an entry that is neither."""
        names: set[str] = set()
        networks = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not _NAME.fullmatch(entry):
                    raise ValueError(f"{raw!r} is neither a host name nor a network") from None
                names.add(entry)
        return cls(frozenset(names), tuple(networks))

    def allows_address(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)


NOTHING_ALLOWED = AllowList()


def ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """The address a host made of numbers stands for, as inet_aton (and so curl and most fetchers) reads it:
    1 to 4 parts, each decimal, octal (leading 0) or hex (0x); the last part fills the remaining bytes."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.fullmatch(p) for p in parts):
        return None
    values = [int(p, 16) if p.startswith("0x") else int(p, 8) if p.startswith("0") and len(p) > 1 else int(p)
              for p in parts]
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        return None
    number = last
    for index, value in enumerate(head):
        number |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64, IPv4-compatible), if any."""
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if any(address in net for net in _EMBEDDING) and int(address) > 1:  # not :: or ::1 (checked as IPv6)
        return ipaddress.IPv4Address(address.packed[12:])
    return None


def address_problem(address: IPAddress, allowed: AllowList = NOTHING_ALLOWED) -> str | None:
    """Why `address` may not be fetched (private, loopback, link-local, metadata, ...), None when it may."""
    if allowed.allows_address(address):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            problem = address_problem(embedded, allowed)
            if problem:
                return f"{problem} (inside the IPv6 address {address})"
    if address.is_loopback or address.is_unspecified:
        return f"points at this machine ({address})"
    if address.is_link_local:
        return f"is a link-local address ({address}), where cloud metadata services answer"
    if not address.is_global or address.is_multicast or address.is_reserved:
        return f"is a private or reserved address ({address})"
    return None


def _host(url: str) -> str:
    """The URL's host, lower case, without brackets or a trailing dot; UrlRefused when the URL is unusable."""
    if "\\" in url or not url.isprintable() or any(c.isspace() for c in url):
        raise UrlRefused("contains a backslash, spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise UrlRefused("is not a URL") from None
    if parts.scheme.lower() not in SCHEMES or not host:
        raise UrlRefused("must be an http(s) URL with a host")
    return host.rstrip(".")


def literal_address(host: str) -> IPAddress | None:
    """The address `host` spells out (any IPv4 spelling, or IPv6 without its zone), None for a name."""
    found = ipv4_literal(host)
    if found is not None:
        return found
    try:
        return ipaddress.IPv6Address(host.split("%", 1)[0]) if ":" in host else None
    except ValueError:
        raise UrlRefused("has a malformed IPv6 address") from None


def check_url(url: str, allowed: AllowList = NOTHING_ALLOWED) -> None:
    """UrlRefused unless `url` is an http(s) URL whose host is a public address or a name that may be public
    (no DNS: the write-time check)."""
    host = _host(url)
    if host in allowed.names:
        return
    address = literal_address(host)
    if address is not None:
        problem = address_problem(address, allowed)
        if problem:
            raise UrlRefused(problem)
        return
    if not _NAME.fullmatch(host):
        raise UrlRefused("has a host that is not a DNS name (use the xn-- form for international names)")
    if host in FORBIDDEN_NAMES or host.endswith(FORBIDDEN_SUFFIXES) or "." not in host:
        raise UrlRefused(f"names a host of the local network ({host}); use a public host name")


def system_resolver(host: str) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]


def check_fetch(url: str, allowed: AllowList = NOTHING_ALLOWED, resolve: Resolver = system_resolver
                ) -> list[IPAddress]:
    """The addresses to connect to for `url` (every one the name resolves to is public), or UrlRefused. Call it
    for the first request and for every redirect hop, and connect only to an address it returned."""
    check_url(url, allowed)
    host = _host(url)
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(host)]
    except (OSError, ValueError) as exc:
        raise UrlRefused(f"names a host that cannot be resolved ({host})") from exc
    if not addresses:
        raise UrlRefused(f"names a host that cannot be resolved ({host})")
    if host not in allowed.names:
        for address in addresses:
            problem = address_problem(address, allowed)
            if problem:
                raise UrlRefused(f"names a host ({host}) whose address may not be fetched: it {problem}")
    return addresses
