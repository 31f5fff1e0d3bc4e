"""The client's address behind trusted reverse proxies (AIDRAW_TRUSTED_PROXIES).

Only a proxy we run may say who its client is. When the peer is one of the trusted proxies, `X-Forwarded-For` is
read from the right (each proxy appends the address it saw) and the first address that is not a trusted proxy
is the client; everything left of it was written by the client and is ignored. A peer that is not trusted is the
client itself, whatever headers it sends. With no trusted proxies (the default) the header is never read.
uvicorn's own proxy-header handling is off (aidraw/cli.py), so this is the one place that decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or networks (CIDR); ValueError names an entry that is neither."""
    networks = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{raw.strip()!r} is not an address or a network") from None
    return tuple(networks)


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == net.version and ip in net for net in trusted)


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address: the peer, or, when the peer is a trusted proxy, the right-most address in the
    `X-Forwarded-For` headers (all of them, in order) that is not a trusted proxy."""
    if peer is None:
        return "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer
