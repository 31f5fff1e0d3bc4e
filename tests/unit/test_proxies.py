"""The client address behind trusted proxies (infra/proxies.py): only a trusted peer's X-Forwarded-For counts."""

from __future__ import annotations

import pytest

from infra.proxies import client_address, parse_networks

TRUSTED = parse_networks(["10.0.0.0/8", "127.0.0.1", "::1"])


def test_without_trusted_proxies_the_peer_is_the_client_whatever_it_sends() -> None:
    assert client_address("198.51.100.2", ["203.0.113.9"], ()) == "198.51.100.2"
    assert client_address("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"


def test_an_untrusted_peer_cannot_name_another_client() -> None:
    assert client_address("198.51.100.2", ["203.0.113.9"], TRUSTED) == "198.51.100.2"


@pytest.mark.parametrize(("headers", "client"), [
    (["203.0.113.9"], "203.0.113.9"),
    (["1.2.3.4, 203.0.113.9"], "203.0.113.9"),  # the client's own (spoofed) entry is left of the real one
    (["1.2.3.4, 203.0.113.9, 10.1.1.1"], "203.0.113.9"),  # a chain of trusted proxies
    (["1.2.3.4", "203.0.113.9, 10.2.2.2"], "203.0.113.9"),  # several headers read as one list
    (["10.3.3.3, 10.1.1.1"], "10.3.3.3"),  # every hop trusted: the first one
    ([], "127.0.0.1"), ([" , "], "127.0.0.1"),
])
def test_a_trusted_proxys_header_is_read_from_the_right(headers: list[str], client: str) -> None:
    assert client_address("127.0.0.1", headers, TRUSTED) == client


def test_bad_entries_are_named() -> None:
    with pytest.raises(ValueError, match=r"'proxy\.example' is not an address"):
        parse_networks(["10.0.0.0/8", "proxy.example"])
    assert client_address(None, [], TRUSTED) == "unknown"
