"""``kestrel.urlfetch.fetch``: fetching ``_url`` images without reaching into private networks.

All real traffic goes to a small threaded HTTP(S) server on 127.0.0.1 (the "remote"), reached through
``allowed_hosts``. Private, metadata and other non-public ranges are only ever *resolved* (through a
monkeypatched ``socket.getaddrinfo``) and refused before any connection: the ``no_connect`` fixture
makes every ``socket.connect`` fail the test and records the attempt.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kestrel.urlfetch import FetchPolicy, FetchRefused, check_address, fetch_image_bytes
from kestrel.urlfetch import connection as connection_module

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
TRICKLE_STEP = 0.05  # seconds between the bytes of a trickling answer


class _RemoteServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.seen: list[tuple[str, str]] = []  # (path, Host header) of every request
        self.sni: list[str | None] = []  # server names of TLS handshakes (https server only)
        self.stop = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up early (size cap, deadline, bad certificate) are expected here


class _Remote(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _RemoteServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Host", "")))
        path, _, query = self.path.partition("?")
        route = getattr(self, "route_" + path.strip("/").split("/")[0].replace("-", "_"), None)
        try:
            if route is None:
                self.answer(404, b"no such route")
            else:
                route(path, query)
        except OSError:
            pass  # the client went away: expected when it refuses an answer half-way

    # Helpers -------------------------------------------------------------------------------

    def answer(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str) -> None:
        self.answer(302, Location=location)

    def trickle(self, data: bytes) -> None:
        for i in range(len(data)):
            if self.server.stop.wait(TRICKLE_STEP):
                return
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()

    # Routes --------------------------------------------------------------------------------

    def route_img(self, path: str, query: str) -> None:
        self.answer(200, IMAGE, Content_Type="image/png")

    def route_echo_host(self, path: str, query: str) -> None:
        self.answer(200, self.headers.get("Host", "").encode())

    def route_status(self, path: str, query: str) -> None:  # /status/403
        self.answer(int(path.rsplit("/", 1)[1]), b"nope")

    def route_redirect(self, path: str, query: str) -> None:  # /redirect/N: N hops, then /img
        left = int(path.rsplit("/", 1)[1])
        self.redirect(f"/redirect/{left - 1}" if left > 1 else "../img")  # relative Locations

    def route_absolute_redirect(self, path: str, query: str) -> None:
        self.redirect(f"http://{self.headers['Host']}/img")

    def route_loop(self, path: str, query: str) -> None:
        self.redirect("/loop")

    def route_to_ip(self, path: str, query: str) -> None:  # the same server, but by its IP
        self.redirect(f"http://127.0.0.1:{self.server.server_address[1]}/img?{query}")

    def route_to_file(self, path: str, query: str) -> None:
        self.redirect("file:///etc/passwd")

    def route_to_metadata(self, path: str, query: str) -> None:
        self.redirect("http://169.254.169.254/latest/meta-data/iam/security-credentials/")

    def route_no_location(self, path: str, query: str) -> None:
        self.answer(302)

    def route_huge(self, path: str, query: str) -> None:  # claims a terabyte, sends nothing
        self.send_response(200)
        self.send_header("Content-Length", str(10**12))
        self.end_headers()
        self.close_connection = True

    def route_chunked(self, path: str, query: str) -> None:  # /chunked?N: N chunks of 1000 bytes
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for _ in range(int(query)):
            self.wfile.write(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def route_close_delimited(self, path: str, query: str) -> None:  # no length: body ends at close
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"x" * int(query))
        self.close_connection = True

    def route_truncated(self, path: str, query: str) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"x" * 10)
        self.close_connection = True

    def route_trickle(self, path: str, query: str) -> None:  # a byte every TRICKLE_STEP
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.flush()
        self.trickle(b"x" * 1000)

    def route_slow_headers(self, path: str, query: str) -> None:
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        self.trickle(b"X-Slow: " + b"x" * 1000 + b"\r\n\r\n")


def _serve(server: _RemoteServer) -> Iterator[_RemoteServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)


@pytest.fixture(scope="module")
def remote() -> Iterator[_RemoteServer]:
    yield from _serve(_RemoteServer(_Remote))


@pytest.fixture
def port(remote: _RemoteServer) -> int:
    return int(remote.server_address[1])


LOCAL = FetchPolicy(allowed_hosts=frozenset({"localhost"}), timeout_seconds=3.0, max_bytes=100_000)


def _refused(url: str, policy: FetchPolicy = LOCAL) -> FetchRefused:
    with pytest.raises(FetchRefused) as caught:
        fetch_image_bytes(url, policy)
    return caught.value


# Fixtures that stand in for the network ---------------------------------------------------------


@dataclass
class FakeDNS:
    answers: dict[str, list[str]]
    calls: list[str]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    """``socket.getaddrinfo`` answering from ``answers`` (name -> addresses); other names fail."""
    dns = FakeDNS({}, [])

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        dns.calls.append(host)
        if host not in dns.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        result: list[Any] = []
        for text in dns.answers[host]:
            if ipaddress.ip_address(text).version == 6:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (text, port, 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (text, port)))
        return result

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return dns


# check_address ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("10.0.0.5", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared address space (CGNAT)"),
        ("100.127.255.254", "shared address space (CGNAT)"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "reserved"),
        ("198.51.100.7", "reserved"),
        ("203.0.113.9", "reserved"),
        ("198.18.0.1", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "reserved"),
        ("2001::1", "reserved"),  # Teredo
        ("::127.0.0.1", "reserved"),  # deprecated IPv4-compatible form
        ("::ffff:127.0.0.1", "IPv4-mapped address of loopback"),
        ("::ffff:10.0.0.1", "IPv4-mapped address of private"),
        ("::ffff:169.254.169.254", "IPv4-mapped address of cloud metadata"),
        ("64:ff9b::7f00:1", "NAT64 address of loopback"),
        ("2002:a00:1::1", "6to4 address of private"),
    ],
)
def test_check_address_refuses_non_public(address: str, reason: str) -> None:
    assert check_address(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "11.0.0.1",
        "172.32.0.1",  # just past 172.16/12
        "100.128.0.1",  # just past 100.64/10
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    ],
)
def test_check_address_allows_public(address: str) -> None:
    assert check_address(ipaddress.ip_address(address)) is None


# Refused before any connection -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "a loopback address (127.0.0.1)"),
        ("http://127.0.0.2:8080/x.png", "a loopback address (127.0.0.2)"),
        ("http://127.1/", "a loopback address (127.0.0.1)"),
        ("http://0x7f.1/", "a loopback address (127.0.0.1)"),
        ("http://0X7F000001/", "a loopback address (127.0.0.1)"),
        ("http://2130706433/", "a loopback address (127.0.0.1)"),
        ("http://017700000001/", "a loopback address (127.0.0.1)"),
        ("http://0177.0.0.01/", "a loopback address (127.0.0.1)"),
        ("http://127.000.000.001/", "a loopback address (127.0.0.1)"),
        ("http://127.0.0.1./", "a loopback address (127.0.0.1)"),
        ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "a loopback address (127.0.0.1)"),  # full-width
        ("http://0.0.0.0/", "an unspecified address (0.0.0.0)"),
        ("http://0/", "an unspecified address (0.0.0.0)"),
        ("http://[::1]/", "a loopback address (::1)"),
        ("http://[0:0:0:0:0:0:0:1]:8000/", "a loopback address (::1)"),
        ("http://[::]/", "an unspecified address (::)"),
        ("http://[::ffff:127.0.0.1]/", "an IPv4-mapped address of loopback (::ffff:7f00:1)"),
        ("http://[::ffff:7f00:1]/", "an IPv4-mapped address of loopback (::ffff:7f00:1)"),
        ("https://localhost/", "a loopback address (127.0.0.1)"),
        ("http://LOCALHOST.:8000/", "a loopback address (127.0.0.1)"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address (169.254.169.254)"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "a cloud metadata address (fd00:ec2::254)"),
        ("http://10.0.0.1/", "a private address (10.0.0.1)"),
        ("http://100.64.0.1/", "an address in the shared address space (CGNAT) (100.64.0.1)"),
        ("http://[fe80::1]/", "a link-local address (fe80::1)"),
    ],
)
def test_loopback_and_other_literals_are_refused_without_connecting(
    url: str, reason: str, no_connect: list[Any]
) -> None:
    refused = _refused(url, FetchPolicy(allowed_hosts=frozenset({"example.org"})))
    assert refused.status == 400
    assert reason in refused.detail
    assert refused.detail.endswith("; only public addresses are fetched")
    assert no_connect == []


def test_allowing_one_spelling_does_not_allow_the_others(no_connect: list[Any]) -> None:
    policy = FetchPolicy(allowed_hosts=frozenset({"127.0.0.1", "localhost"}))
    for url in ("http://127.1/", "http://2130706433/", "http://[::1]/", "http://[::ffff:127.0.0.1]/"):
        assert "loopback" in _refused(url, policy).detail
    assert no_connect == []


def test_a_name_that_resolves_to_loopback_is_refused(fake_dns: FakeDNS, no_connect: list[Any]) -> None:
    fake_dns.answers["loopback.test"] = ["127.0.0.1"]
    refused = _refused("http://loopback.test/cat.jpg")
    assert refused.status == 400
    assert refused.detail == (
        "the URL's host resolves to a loopback address (127.0.0.1); only public addresses are fetched"
    )
    assert no_connect == []


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["10.0.0.5"], "a private address (10.0.0.5)"),
        (["172.20.1.1"], "a private address (172.20.1.1)"),
        (["192.168.0.10"], "a private address (192.168.0.10)"),
        (["169.254.169.254"], "a cloud metadata address (169.254.169.254)"),
        (["fd00:ec2::254"], "a cloud metadata address (fd00:ec2::254)"),
        (["169.254.10.10"], "a link-local address (169.254.10.10)"),
        (["100.64.1.1"], "an address in the shared address space (CGNAT) (100.64.1.1)"),
        (["fd12:3456::1"], "a private address (fd12:3456::1)"),
        (["fe80::1"], "a link-local address (fe80::1)"),
        (["::1"], "a loopback address (::1)"),
        (["::ffff:10.0.0.1"], "an IPv4-mapped address of private (::ffff:a00:1)"),
        (["224.0.0.251"], "a multicast address (224.0.0.251)"),
        (["203.0.113.5"], "a reserved address (203.0.113.5)"),
        # One bad address among good ones is enough: the connection could land on any of them.
        (["93.184.216.34", "10.1.2.3"], "a private address (10.1.2.3)"),
        (["2606:4700::1", "::1"], "a loopback address (::1)"),
    ],
)
def test_names_resolving_to_non_public_addresses_are_refused(
    addresses: list[str], reason: str, fake_dns: FakeDNS, no_connect: list[Any]
) -> None:
    fake_dns.answers["images.example"] = addresses
    refused = _refused("https://images.example/cat.jpg", FetchPolicy())
    assert refused.status == 400
    assert refused.detail == f"the URL's host resolves to {reason}; only public addresses are fetched"
    assert no_connect == []


def test_the_checked_address_is_the_one_connected_to(fake_dns: FakeDNS, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: a second lookup would answer 127.0.0.1, so fetch must not look up again."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])
    real_fake = socket.getaddrinfo

    def rebinding(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        fake_dns.answers[host] = next(answers)
        return real_fake(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    connected: list[Any] = []

    def connect(self: socket.socket, address: Any) -> None:
        connected.append(address)
        raise ConnectionRefusedError(111, "Connection refused")  # never leaves the machine

    monkeypatch.setattr(socket.socket, "connect", connect)
    refused = _refused("http://images.example/cat.jpg", FetchPolicy())
    assert refused.status == 502
    assert "refused the connection" in refused.detail
    assert fake_dns.calls == ["images.example"]
    assert connected == [("93.184.216.34", 80)]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://example.com/a.png", "the URL has the scheme 'ftp'; only http and https URLs are fetched"),
        ("file:///etc/passwd", "the scheme 'file'"),
        ("gopher://example.com/", "the scheme 'gopher'"),
        ("javascript:alert(1)", "the scheme 'javascript'"),
        ("example.com/a.png", "the URL has no scheme"),
        ("//example.com/a.png", "the URL has no scheme"),
        ("http://user:pass@example.com/a.png", "user name or password"),
        ("http://user@example.com/a.png", "user name or password"),
        ("http://:@example.com/a.png", "user name or password"),
        ("http://example.com\\@127.0.0.1/", "user name or password"),
        ("http:///a.png", "the URL has no host"),
        ("http://", "the URL has no host"),
        ("http://:80/a.png", "the URL has no host"),
        ("http://example.com/" + "a" * 2040, "longer than 2048 characters"),
        ("http://exa mple.com/", "spaces or control characters"),
        ("http://example.com/a.png\r\nX-Injected: 1", "spaces or control characters"),
        ("http://example.com/\x00", "spaces or control characters"),
        ("http://a..b/", "not a valid name"),
        ("http://-example.com/", "not a valid name"),
        ("http://example-.com/", "not a valid name"),
        ("http://exa$mple.com/", "not a valid name"),
        ("http://" + "a" * 64 + ".com/", "not a valid name"),
        ("http://" + "a." * 127 + "com/", "not a valid name"),
        ("http://example.com:99999/", "the URL is malformed"),
        ("http://example.com:http/", "the URL is malformed"),
        ("http://example.com:0/", "port 0"),
        ("http://1.2.3.4.5/", "neither a valid name nor a valid IPv4 address"),
        ("http://256.1.1.1/", "not a valid IPv4 address"),
        ("http://08.1.1.1/", "not a valid IPv4 address"),
        ("http://4294967296/", "not a valid IPv4 address"),
        ("http://[::1%25eth0]/", "zone identifier"),
        ("http://[not-an-address]/", "the URL is malformed"),
    ],
)
def test_bad_urls_are_refused_before_resolving(
    url: str, expected: str, fake_dns: FakeDNS, no_connect: list[Any]
) -> None:
    refused = _refused(url, FetchPolicy(allowed_hosts=frozenset({"example.com"})))
    assert refused.status == 400
    assert expected in refused.detail
    assert fake_dns.calls == []
    assert no_connect == []


def test_an_unknown_host_cannot_be_resolved(fake_dns: FakeDNS, no_connect: list[Any]) -> None:
    refused = _refused("http://nowhere.invalid/cat.jpg")
    assert (refused.status, refused.detail) == (400, "cannot resolve host 'nowhere.invalid'")
    assert no_connect == []


def test_a_hanging_resolver_cannot_outlast_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hanging(*args: Any, **kwargs: Any) -> list[Any]:
        release.wait(5)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    started = time.monotonic()
    try:
        refused = _refused("http://slow-dns.example/", FetchPolicy(timeout_seconds=0.3))
    finally:
        release.set()
    assert refused.status == 504
    assert time.monotonic() - started < 1.5


# Against the loopback remote (allowed as "localhost") --------------------------------------------


def test_an_allowed_host_is_fetched(port: int) -> None:
    assert fetch_image_bytes(f"http://localhost:{port}/img", LOCAL) == IMAGE


def test_the_original_host_header_is_sent(port: int) -> None:
    assert fetch_image_bytes(f"http://localhost:{port}/echo-host", LOCAL) == f"localhost:{port}".encode()


def test_allowed_hosts_match_case_insensitively(port: int) -> None:
    policy = FetchPolicy(allowed_hosts=frozenset({"LocalHost"}))
    assert fetch_image_bytes(f"http://LOCALHOST:{port}/img", policy) == IMAGE


def test_a_host_not_allowed_is_refused_even_when_it_serves(port: int, remote: _RemoteServer) -> None:
    marker = uuid.uuid4().hex
    refused = _refused(f"http://127.0.0.1:{port}/img?{marker}")  # only "localhost" is allowed
    assert refused.status == 400
    assert "loopback" in refused.detail
    assert not [path for path, _ in remote.seen if marker in path]


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/status/404", 404, "the server answered 404 (not found)"),
        ("/status/403", 400, "the server answered 403"),
        ("/status/410", 400, "the server answered 410"),
        ("/status/500", 502, "the server answered 500"),
        ("/status/503", 502, "the server answered 503"),
        ("/status/304", 400, "the server answered 304"),
    ],
)
def test_remote_statuses_are_mapped(port: int, path: str, status: int, detail: str) -> None:
    refused = _refused(f"http://localhost:{port}{path}")
    assert (refused.status, refused.detail) == (status, detail)


def test_a_redirect_chain_is_followed(port: int, remote: _RemoteServer) -> None:
    before = len(remote.seen)
    assert fetch_image_bytes(f"http://localhost:{port}/redirect/3", LOCAL) == IMAGE
    assert [path for path, _ in remote.seen[before:]] == ["/redirect/3", "/redirect/2", "/redirect/1", "/img"]


def test_an_absolute_redirect_is_followed(port: int) -> None:
    assert fetch_image_bytes(f"http://localhost:{port}/absolute-redirect", LOCAL) == IMAGE


def test_too_many_redirects_are_refused(port: int) -> None:
    refused = _refused(f"http://localhost:{port}/redirect/4")
    assert (refused.status, refused.detail) == (400, "the URL redirects more than 3 times")


def test_a_redirect_loop_is_refused(port: int, remote: _RemoteServer) -> None:
    before = len(remote.seen)
    assert _refused(f"http://localhost:{port}/loop").detail == "the URL redirects more than 3 times"
    assert len(remote.seen) - before == 4  # the first request and three redirects, no more


def test_a_redirect_to_a_refused_address_is_not_followed(port: int, remote: _RemoteServer) -> None:
    marker = uuid.uuid4().hex
    refused = _refused(f"http://localhost:{port}/to-ip?{marker}")
    assert refused.status == 400
    assert refused.detail.startswith("the URL's host is a loopback address (127.0.0.1)")
    assert f"after a redirect to http://127.0.0.1:{port}/img?{marker}" in refused.detail
    assert [path for path, _ in remote.seen if marker in path] == [f"/to-ip?{marker}"]


def test_a_redirect_to_cloud_metadata_is_not_followed(port: int) -> None:
    refused = _refused(f"http://localhost:{port}/to-metadata")
    assert refused.status == 400
    assert "cloud metadata address (169.254.169.254)" in refused.detail


def test_a_redirect_to_another_scheme_is_refused(port: int) -> None:
    refused = _refused(f"http://localhost:{port}/to-file")
    assert refused.status == 400
    assert "the scheme 'file'" in refused.detail


def test_a_redirect_without_location_is_a_remote_error(port: int) -> None:
    assert _refused(f"http://localhost:{port}/no-location").status == 502


def test_a_huge_content_length_is_refused_before_reading(port: int) -> None:
    started = time.monotonic()
    refused = _refused(f"http://localhost:{port}/huge")
    assert refused.status == 413
    assert f"{10**12} bytes" in refused.detail
    assert time.monotonic() - started < 1


def test_a_chunked_body_under_the_cap_is_read(port: int) -> None:
    assert fetch_image_bytes(f"http://localhost:{port}/chunked?50", LOCAL) == b"x" * 50_000


def test_a_chunked_body_over_the_cap_is_cut_off(port: int) -> None:
    refused = _refused(f"http://localhost:{port}/chunked?1000")  # 1 MB against a 100 kB cap
    assert refused.status == 413
    assert "100000 bytes" in refused.detail


def test_a_body_without_length_over_the_cap_is_cut_off(port: int) -> None:
    assert fetch_image_bytes(f"http://localhost:{port}/close-delimited?5000", LOCAL) == b"x" * 5000
    assert _refused(f"http://localhost:{port}/close-delimited?1000000").status == 413


def test_a_truncated_body_is_a_remote_error(port: int) -> None:
    refused = _refused(f"http://localhost:{port}/truncated")
    assert (refused.status, refused.detail) == (
        502,
        "the server closed the connection after 10 of 1000 bytes",
    )


@pytest.mark.parametrize("path", ["/trickle", "/slow-headers"])
def test_a_trickling_server_cannot_outlast_the_deadline(port: int, path: str) -> None:
    # Each byte arrives well within any per-read timeout; only a total deadline stops this.
    policy = FetchPolicy(allowed_hosts=frozenset({"localhost"}), timeout_seconds=0.5)
    started = time.monotonic()
    refused = _refused(f"http://localhost:{port}{path}", policy)
    elapsed = time.monotonic() - started
    assert refused.status == 504
    assert refused.detail == "the server did not send the image within 0.5 seconds"
    assert 0.4 < elapsed < 1.2


def test_a_closed_port_is_a_remote_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    refused = _refused(f"http://localhost:{free_port}/img")
    assert refused.status == 502
    assert "refused the connection" in refused.detail


# TLS ----------------------------------------------------------------------------------------------


@dataclass
class _Pki:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> _Pki:
    """A throw-away CA and a server certificate for the name "localhost" only."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    validity = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kestrel test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("pki")
    pki = _Pki(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    pki.ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return pki


@pytest.fixture(scope="module")
def tls_remote(pki: _Pki) -> Iterator[_RemoteServer]:
    server = _RemoteServer(_Remote)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_pem, pki.key_pem)

    def record_sni(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, ctx: ssl.SSLContext) -> None:
        server.sni.append(name)

    context.sni_callback = record_sni
    # The handshake happens in the handler's thread, on its first read, not in the accept loop.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    yield from _serve(server)


@pytest.fixture
def trust_test_ca(pki: _Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    trusted: Callable[[], ssl.SSLContext] = lambda: context  # noqa: E731
    monkeypatch.setattr(connection_module, "_tls_context", trusted)


def test_https_is_verified_against_the_host_name(tls_remote: _RemoteServer, trust_test_ca: None) -> None:
    tls_port = tls_remote.server_address[1]
    before = len(tls_remote.sni)
    assert fetch_image_bytes(f"https://localhost:{tls_port}/img", LOCAL) == IMAGE
    # Connected to the resolved IP, yet SNI and the certificate check used the name.
    assert tls_remote.sni[before:] == ["localhost"]


def test_https_with_an_untrusted_certificate_is_refused(tls_remote: _RemoteServer) -> None:
    refused = _refused(f"https://localhost:{tls_remote.server_address[1]}/img")  # system trust store
    assert refused.status == 502
    assert "TLS certificate is not valid for localhost" in refused.detail


def test_https_with_a_certificate_for_another_name_is_refused(tls_remote: _RemoteServer, trust_test_ca: None) -> None:
    policy = FetchPolicy(allowed_hosts=frozenset({"127.0.0.1"}))
    refused = _refused(f"https://127.0.0.1:{tls_remote.server_address[1]}/img", policy)
    assert refused.status == 502
    assert "TLS certificate is not valid for 127.0.0.1" in refused.detail


# Configuration -------------------------------------------------------------------------------------


def test_policy_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KESTREL_FETCH_ALLOW_HOSTS", " LocalHost, 127.0.0.1 ,,[::1]")
    monkeypatch.setenv("KESTREL_FETCH_MAX_BYTES", "1000")
    monkeypatch.setenv("KESTREL_FETCH_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("KESTREL_FETCH_BUDGET_SECONDS", "12")
    assert FetchPolicy.from_env() == FetchPolicy(
        max_bytes=1000,
        timeout_seconds=2.5,
        allowed_hosts=frozenset({"localhost", "127.0.0.1", "::1"}),
        budget_seconds=12.0,
    )


def test_policy_from_env_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ALLOW_HOSTS", "MAX_BYTES", "TIMEOUT_SECONDS", "BUDGET_SECONDS"):
        monkeypatch.delenv(f"KESTREL_FETCH_{name}", raising=False)
    assert FetchPolicy.from_env() == FetchPolicy()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KESTREL_FETCH_MAX_BYTES", "ten"),
        ("KESTREL_FETCH_MAX_BYTES", "0"),
        ("KESTREL_FETCH_TIMEOUT_SECONDS", "-1"),
        ("KESTREL_FETCH_TIMEOUT_SECONDS", "nan"),
    ],
)
def test_policy_from_env_rejects_bad_numbers(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        FetchPolicy.from_env()


def test_a_fetch_with_no_time_left_in_its_request_budget_is_408_without_connecting(no_connect: list[Any]) -> None:
    from kestrel.urlfetch.deadline import Deadline

    spent = Deadline(5, end=0.0)  # a budget whose end has passed
    with pytest.raises(FetchRefused) as refused:
        fetch_image_bytes("http://93.184.216.34/cat.jpg", FetchPolicy(), spent)
    assert refused.value.status == 408
    assert "5 seconds" in refused.value.detail and "ran out" in refused.value.detail
    assert no_connect == []


def test_a_request_budget_ends_a_fetch_before_its_own_timeout() -> None:
    from kestrel.urlfetch.deadline import Deadline

    budget = Deadline(1)
    own = Deadline(10).within(budget)
    assert own.end == budget.end and own.cut_by is budget
    later = Deadline(10)
    assert Deadline(0.5).within(later).cut_by is None  # its own timeout comes first
