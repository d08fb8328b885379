"""SSRF through classify's ``_url`` records: loopback in every spelling, a redirect to a refused
address and names resolving to private, link-local and metadata addresses are all refused with a
4xx ``_status``. Traffic goes to 127.0.0.1 only; the non-loopback ranges are proven with a fake
resolver and a socket guard that refuses (and records) any connection that is not to loopback."""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import RunningServer, use_fetch_settings
from tests.flow.conftest import TrainableTask, trained_server
from tests.photos import photo

pytestmark = pytest.mark.slow  # one model is trained per module

CAT = photo("chelsea", 120)


@dataclass
class Recorder:
    """A local HTTP server on 127.0.0.1 that records every request it gets."""

    redirect_to: str | None = None
    port: int = 0
    paths: list[str] = field(default_factory=list)


@contextmanager
def recording_server(recorder: Recorder) -> Iterator[Recorder]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            recorder.paths.append(self.path)
            if recorder.redirect_to:
                self.send_response(302)
                self.send_header("Location", recorder.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(CAT)))
            self.end_headers()
            self.wfile.write(CAT)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, TrainableTask]]:
    with trained_server(tmp_path_factory.mktemp("ssrf") / "data") as trained_task:
        yield trained_task


@pytest.fixture
def target() -> Iterator[Recorder]:
    with recording_server(Recorder()) as recorder:
        yield recorder


def _classify_urls(trainable: TrainableTask, urls: list[str]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = [{"_url": url, "_id": url} for url in urls]
    answer = trainable.api.post("classify/", {"task_id": trainable.task["id"], "records": records})
    assert [record["_id"] for record in answer["records"]] == urls
    found: list[dict[str, Any]] = answer["records"]
    return found


def _assert_refused(records: list[dict[str, Any]]) -> None:
    for record in records:
        status = record["_status"]
        assert 400 <= status["code"] < 500, f"{record['_id']}: {status}"
        assert "best_label" not in record or not record["best_label"], record


LOOPBACK_HOSTS = [
    "127.0.0.1",
    "127.0.0.2",
    "[::1]",
    "localhost",
    "LOCALHOST.",
    "2130706433",
    "0x7f000001",
    "017700000001",
    "0.0.0.0",
    "127.1",
    "0x7f.1",
    "[::ffff:127.0.0.1]",
]


def test_loopback_in_every_spelling_is_refused_and_never_reached(
    trained: tuple[RunningServer, TrainableTask], target: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, trainable = trained
    monkeypatch.delenv("KESTREL_FETCH_ALLOW_HOSTS", raising=False)
    urls = [f"http://{host}:{target.port}/cat.jpg" for host in LOOPBACK_HOSTS]
    for start in range(0, len(urls), 10):
        records = _classify_urls(trainable, urls[start : start + 10])
        _assert_refused(records)
        for record in records:
            text = record["_status"]["text"]
            assert "loopback" in text or "unspecified" in text or "IPv4-mapped" in text, record
    assert target.paths == [], f"the target was reached: {target.paths}"


def test_a_redirect_to_a_refused_address_is_not_followed(
    trained: tuple[RunningServer, TrainableTask], target: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, trainable = trained
    use_fetch_settings(monkeypatch, allowed_hosts=frozenset({"localhost"}))  # the redirector only: a dev allowance
    with recording_server(Recorder(redirect_to=f"http://127.0.0.1:{target.port}/cat.jpg")) as redirector:
        with recording_server(Recorder()) as allowed:
            control, redirected = _classify_urls(
                trainable,
                [f"http://localhost:{allowed.port}/cat.jpg", f"http://localhost:{redirector.port}/go"],
            )
        # Positive controls: the allowed host is fetched and classified; the redirector was asked.
        assert control["_status"]["code"] == 200 and control["best_label"]["name"] == "cat", control
        assert redirector.paths == ["/go"]
    _assert_refused([redirected])
    assert target.paths == [], f"the redirect target was reached: {target.paths}"


NON_PUBLIC = ["10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "fd00:ec2::254", "100.64.0.1"]


def test_names_resolving_to_private_ranges_are_refused_without_connecting(
    trained: tuple[RunningServer, TrainableTask], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, trainable = trained
    monkeypatch.delenv("KESTREL_FETCH_ALLOW_HOSTS", raising=False)
    names = {f"img{index}.public-looking.example": address for index, address in enumerate(NON_PUBLIC)}
    resolved: list[str] = []
    attempted: list[Any] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def fake_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host in names:
            resolved.append(host)
            address = names[host]
            if ipaddress.ip_address(address).version == 6:
                return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port or 80, 0, 0))]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 80))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if not ipaddress.ip_address(host).is_loopback:
            attempted.append(address)
            raise ConnectionRefusedError(f"test guard: no connection to {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    records = _classify_urls(trainable, [f"http://{name}/cat.jpg" for name in names])
    _assert_refused(records)
    for record in records:
        address = names[record["_id"].split("/")[2]]
        assert f"({address})" in record["_status"]["text"], record  # refused by the address check itself
    assert sorted(resolved) == sorted(names), "the check must come from resolving the name"
    assert attempted == [], f"a connection was attempted: {attempted}"
