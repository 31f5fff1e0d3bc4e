"""`AIDRAW_NATS_URL`: one NATS server or several, comma-separated (a cluster's nodes), and how it is shown.

nats-py's `nats.connect(servers=...)` reads a str as ONE server: "nats://a:4222,nats://b:4222" is no list to it.
Every connection therefore passes `nats_servers(url)`, a list, which it tries in turn (in random order, as
nats-py does for a pool) until one answers, and reconnects to another node when its node goes away.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

SCHEMES = ("nats", "tls")


class NatsUrlError(ValueError):
    """The value names no usable NATS server (said without the credentials in it)."""


def nats_servers(value: str) -> list[str]:
    """The server URLs in `value`, in order: split on commas, blanks stripped. Each must be `nats://host[:port]`
    or `tls://host[:port]` (a user and password may precede the host); anything else is a NatsUrlError."""
    servers = [one.strip() for one in value.split(",")]
    if not any(servers):
        raise NatsUrlError("no NATS server named: give nats://host:4222 (several: comma-separated)")
    for position, server in enumerate(servers, 1):
        where = f"server {position} of {len(servers)}"
        if not server:
            raise NatsUrlError(f"{where} is empty (a stray comma?)")
        split, shown = urlsplit(server), repr(redact_url(server))
        try:
            port = split.port
        except ValueError:  # not a number, or above 65535
            port = 0
        if split.scheme not in SCHEMES:
            raise NatsUrlError(f"{where}, {shown}, is not a nats:// or tls:// URL")
        if port == 0:
            raise NatsUrlError(f"{where}, {shown}, has no port from 1 to 65535")
        if not split.hostname:
            raise NatsUrlError(f"{where}, {shown}, names no host")
        if split.path not in ("", "/") or split.query or split.fragment:
            raise NatsUrlError(f"{where}, {shown}, is not nats://host[:port]")
    return servers


def redact_url(url: str) -> str:
    """The URL (or comma-separated URLs) without user name, password or token, for messages and logs."""
    parts = []
    for one in url.split(","):
        try:
            split = urlsplit(one.strip())
            port = split.port
        except ValueError:
            parts.append("(unreadable URL)")  # said without its text: it may hold a password
            continue
        if split.username is not None or split.password is not None:
            host = split.hostname or ""
            if ":" in host:
                host = f"[{host}]"  # an IPv6 address
            if port:
                host = f"{host}:{port}"
            split = split._replace(netloc=f"***@{host}")
        parts.append(urlunsplit(split))
    return ",".join(parts)
