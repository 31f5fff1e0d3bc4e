"""Fetching a dataset URL (infra/url_fetch.py) from a real HTTP server on loopback: loopback is refused unless
allowed, every redirect hop is checked again, and size, content type, time and redirect limits hold."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from infra.url_fetch import FetchLimits, FetchRefused, fetch, shown
from infra.urls import AllowList

PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 100
LOOPBACK = AllowList.parse(["127.0.0.1/32"])
IMAGES = FetchLimits(content_types=("image/png", "image/jpeg"), max_bytes=1000, timeout_s=2, max_redirects=2)


class Files(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        port = self.headers["Host"].rsplit(":", 1)[1]
        if path == "/cat.png":
            self._send(200, "image/png", PNG)
        elif path == "/page":
            self._send(200, "text/html", b"<html></html>")
        elif path == "/big.png":
            self._send(200, "image/png", b"x" * 5000)
        elif path == "/unannounced.png":  # no length announced: the bytes read are counted
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(b"x" * 5000)
            self.close_connection = True
        elif path == "/slow.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "900")
            self.end_headers()
            for _ in range(9):
                self.wfile.write(b"x" * 100)
                self.wfile.flush()
                time.sleep(0.4)
        elif path == "/to-cat":
            self._redirect("/cat.png")
        elif path == "/to-localhost":
            self._redirect(f"http://localhost:{port}/cat.png")
        elif path == "/loop":
            self._redirect("/loop")
        elif path == "/broken":
            self._send(503, "text/plain", b"later")
        else:
            self._send(404, "text/plain", b"no")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


class Quiet(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        return None  # a client that stops reading a body too large is expected here


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = Quiet(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def refused(url: str, allowed: AllowList = LOOPBACK) -> FetchRefused:
    with pytest.raises(FetchRefused) as caught:
        fetch(url, IMAGES, allowed=allowed)
    return caught.value


def test_an_allowed_address_is_fetched_and_redirects_are_followed(server: str) -> None:
    got = fetch(f"{server}/cat.png", IMAGES, allowed=LOOPBACK)
    assert (got.data, got.content_type) == (PNG, "image/png")
    assert fetch(f"{server}/to-cat", IMAGES, allowed=LOOPBACK).url == f"{server}/cat.png"


def test_loopback_is_refused_unless_allowed(server: str) -> None:
    problem = refused(f"{server}/cat.png", AllowList())
    assert problem.final and "points at this machine" in problem.reason


def test_a_redirect_hop_is_checked_again(server: str) -> None:
    problem = refused(f"{server}/to-localhost")
    assert problem.final and "localhost" in problem.reason and "may not be fetched" in problem.reason


def test_limits_on_type_size_redirects_and_time(server: str) -> None:
    assert "text/html, not one of image/png, image/jpeg" in refused(f"{server}/page").reason
    assert "larger than 1000 bytes" in refused(f"{server}/big.png").reason
    assert "larger than 1000 bytes" in refused(f"{server}/unannounced.png").reason
    assert "more than 2 redirects" in refused(f"{server}/loop").reason
    slow = refused(f"{server}/slow.png")
    assert not slow.final and "took longer than 2 s" in slow.reason
    missing, broken = refused(f"{server}/nothing.png"), refused(f"{server}/broken")
    assert missing.final and "answered 404" in missing.reason
    assert not broken.final and "answered 503" in broken.reason


def test_reasons_never_repeat_credentials_or_queries() -> None:
    assert shown("https://user:secret@files.example:8443/a/cat.png?token=abc#x") == "https://files.example:8443/a/cat.png"
