"""Fetching a URL a user named (a dataset's `oss` item) under the SSRF rule of infra/urls.py, with limits.

- Every hop (the first request and each redirect) goes through `check_fetch`, and the connection is made to an
  address it returned (the URL's host replaced by that address, the name kept in `Host` and, for https, in the
  TLS server name and certificate check): a name cannot pass the check with a public address and then connect
  to a private one.
- Limits: at most `max_redirects` redirects, `timeout_s` for the whole fetch (redirects and a slowly dripping
  body included), `max_bytes` (the announced length and the bytes read), and a content type from
  `content_types`. Proxies from the environment are not used (they would connect to what we did not check).
- `FetchRefused.final` says whether trying again can help: a refused address, a 404, a wrong type or a file too
  large never will; a timeout, a 5xx or a refused connection may.

Reasons name the URL without its user information, query or fragment (they may hold secrets).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from infra.urls import NOTHING_ALLOWED, AllowList, IPAddress, Resolver, UrlRefused, check_fetch, system_resolver


class FetchRefused(Exception):
    def __init__(self, reason: str, *, final: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final


@dataclass(frozen=True)
class FetchLimits:
    content_types: tuple[str, ...]
    max_bytes: int = 32 * 2**20
    timeout_s: float = 30.0
    max_redirects: int = 5


@dataclass(frozen=True)
class Fetched:
    url: str  # the last hop's
    content_type: str
    data: bytes


def shown(url: str) -> str:
    """The URL as a reason may name it: no user information, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "(an unreadable URL)"


def _via(url: str, address: IPAddress) -> tuple[str, str, str]:
    """The URL with its host replaced by `address`, the Host header, and the TLS server name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if address.version == 6 else str(address)
    port = f":{parts.port}" if parts.port is not None else ""
    header = (f"[{host}]" if ":" in host else host) + port
    return urlunsplit((parts.scheme, literal + port, parts.path or "/", parts.query, "")), header, host


def fetch(url: str, limits: FetchLimits, *, allowed: AllowList = NOTHING_ALLOWED,
          resolve: Resolver = system_resolver) -> Fetched:
    """The body of `url` within `limits`, or FetchRefused with a reason naming the URL."""
    deadline = time.monotonic() + limits.timeout_s
    with httpx.Client(follow_redirects=False, trust_env=False, verify=True) as client:
        for _hop in range(limits.max_redirects + 1):
            try:
                addresses = check_fetch(url, allowed, resolve)
            except UrlRefused as refused:
                raise FetchRefused(f"{shown(url)} may not be fetched: it {refused}", final=True) from None
            location = _one_hop(client, url, addresses, limits, deadline)
            if isinstance(location, Fetched):
                return location
            url = location
    raise FetchRefused(f"{shown(url)}: more than {limits.max_redirects} redirects", final=True)


def _one_hop(client: httpx.Client, url: str, addresses: Sequence[IPAddress], limits: FetchLimits,
             deadline: float) -> Fetched | str:
    """The body, or the next URL of a redirect."""
    last_error: Exception | None = None
    for address in addresses:
        target, host_header, server_name = _via(url, address)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        extensions = {"sni_hostname": server_name} if urlsplit(url).scheme == "https" else {}
        request = client.build_request("GET", target, headers={"Host": host_header, "Accept": ", ".join(
            limits.content_types)}, timeout=httpx.Timeout(remaining), extensions=extensions)
        try:
            response = client.send(request, stream=True)
        except httpx.ConnectError as error:
            last_error = error
            continue  # the next address of the name
        except httpx.HTTPError as error:
            raise FetchRefused(f"{shown(url)} could not be fetched ({type(error).__name__})", final=False) from None
        try:
            return _answer(url, response, limits, deadline)
        finally:
            response.close()
    if last_error is None:
        raise FetchRefused(f"{shown(url)} took longer than {limits.timeout_s:g} s", final=False)
    raise FetchRefused(f"{shown(url)} could not be reached ({type(last_error).__name__})", final=False)


def _answer(url: str, response: httpx.Response, limits: FetchLimits, deadline: float) -> Fetched | str:
    if response.is_redirect:
        return urljoin(url, response.headers["location"])
    if response.status_code >= 500:
        raise FetchRefused(f"{shown(url)} answered {response.status_code}", final=False)
    if response.status_code != 200:
        raise FetchRefused(f"{shown(url)} answered {response.status_code}", final=True)
    content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type not in limits.content_types:
        raise FetchRefused(f"{shown(url)} is {content_type or 'of no content type'}, not one of "
                           f"{', '.join(limits.content_types)}", final=True)
    too_large = FetchRefused(f"{shown(url)} is larger than {limits.max_bytes} bytes", final=True)
    announced = response.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limits.max_bytes:
        raise too_large
    body = bytearray()
    try:
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limits.max_bytes:
                raise too_large
            if time.monotonic() > deadline:
                raise FetchRefused(f"{shown(url)} took longer than {limits.timeout_s:g} s", final=False)
    except httpx.HTTPError as error:
        raise FetchRefused(f"{shown(url)} could not be read ({type(error).__name__})", final=False) from None
    return Fetched(url, content_type, bytes(body))
