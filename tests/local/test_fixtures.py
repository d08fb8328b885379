"""The shared ``api_server`` fixture itself, on both runtimes: what the API route tests rely on."""

from __future__ import annotations

import time
from pathlib import Path

from kestrel.composition import build_ports
from kestrel.local.gateway import make_server
from tests.conftest import RunningServer, local_settings


def test_api_server_gives_a_url_tokens_and_a_request_helper(api_server: RunningServer) -> None:
    assert api_server.url.startswith("http://localhost:") and api_server.url.endswith("/")
    assert api_server.runtime in ("local", "aws")
    assert api_server.request("GET", "recognition/v2/task/").json()["count"] == 0
    assert api_server.request("GET", "/recognition/v2/task/", token=None).status_code == 401
    other = api_server.new_token("someone-else@example.com")
    assert other != api_server.token
    created = api_server.request("POST", "recognition/v2/task/", token=other, json={"name": "theirs"})
    assert created.status_code == 201
    assert api_server.request("GET", api_server.url + "recognition/v2/task/").json()["count"] == 0
    assert api_server.request("GET", "recognition/v2/task/", token=other).json()["count"] == 1


def test_a_gateway_starts_and_stops_in_milliseconds(tmp_path: Path) -> None:
    # Why the fixtures are function-scoped: a fresh server per test costs next to nothing.
    ports = build_ports(local_settings(tmp_path / "data"))
    started = time.perf_counter()
    server = make_server(ports, port=0)
    server.close()
    assert time.perf_counter() - started < 1
