"""The URL rule (infra/urls.py): what datasets may name, and what the training fetcher may reach."""

from __future__ import annotations

import ipaddress

import pytest

from infra.urls import AllowList, UrlRefused, check_fetch, check_url, ipv4_literal

REFUSED = [
    "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://[fe80::1%25eth0]/",
    "http://127.0.0.1/", "http://127.1/", "http://2130706433/", "http://0177.0.0.1/", "http://0x7f.0.0.1/",
    "http://0x7f000001/", "http://0/", "http://[::]/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[2002:7f00:1::]/", "http://[::7f00:1]/",
    "http://10.1.2.3/", "http://172.16.0.1/", "http://192.168.1.1/", "http://100.100.100.200/",
    "http://224.0.0.1/", "http://localhost/", "http://LOCALHOST./", "http://api.localhost/",
    "http://metadata.google.internal/", "http://intranet/", "ftp://a.example/x", "file:///etc/passwd",
    "gopher://a.example/", "javascript:alert(1)", "http:///x", "http://127.0.0.1\\@a.example/",
    "http://a.example:99999/", "http://[::1/", "http://ex ample.com/",
]
ALLOWED = ["https://cdn.example.com/a.png", "http://93.184.216.34:8080/x", "http://[2606:4700::1111]/",
           "HTTPS://Example.COM./x", "http://user:pw@example.com/x"]


@pytest.mark.parametrize("url", REFUSED)
def test_private_loopback_metadata_and_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(UrlRefused):
        check_url(url)


@pytest.mark.parametrize("url", ALLOWED)
def test_public_http_urls_pass(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize(("spelling", "address"), [
    ("2130706433", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("127.1", "127.0.0.1"),
    ("10.0x10.1", "10.16.0.1"), ("1.2.3.4", "1.2.3.4"), ("0", "0.0.0.0"),
])
def test_every_ipv4_spelling_is_read_as_inet_aton_reads_it(spelling: str, address: str) -> None:
    assert ipv4_literal(spelling) == ipaddress.IPv4Address(address)


@pytest.mark.parametrize("name", ["1.2.3.4.5", "256.1.1.1", "09.1.1.1", "example.com", "4294967296"])
def test_names_and_out_of_range_numbers_are_not_addresses(name: str) -> None:
    assert ipv4_literal(name) is None


def test_fetch_checks_every_resolved_address_and_returns_them() -> None:
    public = lambda host: ["93.184.216.34", "2606:4700::1111"]  # noqa: E731
    assert [str(a) for a in check_fetch("http://files.example/x", resolve=public)] == ["93.184.216.34",
                                                                                        "2606:4700::1111"]
    rebinding = lambda host: ["93.184.216.34", "169.254.169.254"]  # noqa: E731
    with pytest.raises(UrlRefused, match=r"169\.254\.169\.254"):
        check_fetch("http://files.example/x", resolve=rebinding)
    with pytest.raises(UrlRefused, match="cannot be resolved"):
        check_fetch("http://files.example/x", resolve=lambda host: [])


def test_fetch_refuses_what_the_write_check_refuses_without_resolving() -> None:
    def never(host: str) -> list[str]:
        raise AssertionError("resolved a refused URL")

    for url in ("http://localhost/", "ftp://a.example/", "http://[::ffff:10.0.0.1]/"):
        with pytest.raises(UrlRefused):
            check_fetch(url, resolve=never)


def test_the_allow_list_admits_named_private_hosts_and_networks_only() -> None:
    allowed = AllowList.parse(["files.corp.example", "10.0.0.0/8", " "])
    check_url("http://10.2.3.4/x", allowed)
    check_url("http://files.corp.example/x", allowed)
    assert check_fetch("http://files.corp.example/x", allowed, resolve=lambda h: ["192.168.0.9"])
    with pytest.raises(UrlRefused):
        check_url("http://192.168.0.9/x", allowed)
    with pytest.raises(UrlRefused):
        check_fetch("http://other.corp.example/x", allowed, resolve=lambda h: ["192.168.0.9"])
    with pytest.raises(ValueError):
        AllowList.parse(["not a host!"])
