"""The gateway's pool of worker processes, over real HTTP: each worker answers one request at a
time like a Lambda execution environment; a full pool queues then answers 503, a dead worker is
replaced and its request answers 502, never a hang."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

from kestrel.composition import Ports, build_ports
from kestrel.config import VisionSettings
from kestrel.local.execution import GatewayStopping
from kestrel.local.gateway import Route, make_server
from tests.conftest import RunningServer, local_settings, running_server

# Starts pools of worker processes and waits out their time limits: make test runs it, make test-fast does not.
pytestmark = pytest.mark.slow

HANDLERS = "tests.local.pool_handlers"


@pytest.fixture
def ports(tmp_path: Path) -> Ports:
    return build_ports(local_settings(tmp_path / "data"))


def _stub(name: str) -> list[Route]:
    return [Route("/", "stub-api", f"{HANDLERS}:{name}")]


@pytest.fixture
def pooled(ports: Ports) -> Iterator[Any]:
    """Start a gateway whose one route goes to a stub handler in ``workers`` worker processes."""
    contexts: list[Any] = []

    def start(handler: str, workers: int = 2, **options: Any) -> RunningServer:
        context = running_server(ports, "local", routes=_stub(handler), workers=workers, **options)
        contexts.append(context)
        running = context.__enter__()
        running.server.gateway.warm_up()  # as `kestrel serve` does: no cold start inside a test's limits
        return running

    yield start
    for context in reversed(contexts):
        context.__exit__(None, None, None)


def _in_parallel(calls: list[Any]) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_requests_are_answered_by_separate_processes_at_the_same_time(pooled: Any, tmp_path: Path) -> None:
    server = pooled("rendezvous", workers=2)
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    path = f"recognition/v2/meet/?dir={meeting}&n=2"
    answers = _in_parallel([lambda: server.request("GET", path)] * 2)
    assert [answer.status_code for answer in answers] == [200, 200]
    bodies = [answer.json() for answer in answers]
    assert all(body["met"] for body in bodies)  # each saw the other one running
    assert len({body["pid"] for body in bodies}) == 2  # in two processes


def test_a_worker_answers_one_request_at_a_time_and_stays_for_the_next(pooled: Any) -> None:
    server = pooled("pid", workers=2)
    first = server.request("GET", "recognition/v2/x/").json()
    second = server.request("GET", "recognition/v2/x/").json()
    assert first["pid"] == second["pid"]  # warm: the same environment answered both
    assert 0 < first["remaining_ms"] <= 29_000  # API Gateway's limit, as Lambda's context tells it


def test_a_request_that_waits_past_the_queue_limit_is_503_with_retry_after(pooled: Any, tmp_path: Path) -> None:
    server = pooled("hold", workers=1, queue_seconds=1)
    started, release = tmp_path / "started", tmp_path / "release"
    holding = f"recognition/v2/hold/?started={started}&release={release}"
    first: list[requests.Response] = []
    thread = threading.Thread(target=lambda: first.append(server.request("GET", holding)))
    thread.start()
    try:
        while not started.exists():  # the only worker is busy from here on
            assert thread.is_alive(), first
            threading.Event().wait(0.02)
        refused = server.request("GET", f"recognition/v2/hold/?started={tmp_path / 'other'}&release={release}")
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert "busy" in refused.json()["detail"]
        assert not (tmp_path / "other").exists()  # the refused request never ran
    finally:
        release.write_text("go")
        thread.join(timeout=60)
    assert first[0].status_code == 200


def test_a_worker_that_dies_mid_request_is_a_502_and_is_replaced(ports: Ports) -> None:
    routes = [Route("/recognition/v2/die", "stub-die", f"{HANDLERS}:die"), Route("/", "stub-api", f"{HANDLERS}:pid")]
    with running_server(ports, "local", routes=routes, workers=1) as server:
        server.server.gateway.warm_up()
        before = server.request("GET", "recognition/v2/x/").json()["pid"]
        died = server.request("GET", "recognition/v2/die/")
        assert died.status_code == 502 and "died" in died.json()["detail"]
        died_again = server.request("GET", "recognition/v2/die/")  # its pool starts a new worker
        assert died_again.status_code == 502
        after = server.request("GET", "recognition/v2/x/").json()["pid"]
        assert after == before  # the other function's worker was not touched


def test_a_handler_that_raises_is_a_500_without_the_traceback_and_the_worker_stays(pooled: Any) -> None:
    server = pooled("boom", workers=1)
    for _ in range(2):
        crashed = server.request("GET", "recognition/v2/boom/")
        assert crashed.status_code == 500 and crashed.json() == {"detail": "internal error"}
        assert "secret" not in crashed.text


def test_a_handler_that_cannot_be_loaded_fails_its_requests_only(ports: Ports) -> None:
    routes = [
        Route("/recognition/v2/broken", "stub-broken", "tests.local.no_such_module:handler"),
        Route("/", "stub-api", f"{HANDLERS}:pid"),
    ]
    with running_server(ports, "local", routes=routes, workers=1) as server:
        server.server.gateway.warm_up()
        assert server.request("GET", "recognition/v2/broken/").status_code == 500
        assert server.request("GET", "recognition/v2/x/").status_code == 200


def test_a_worker_process_only_takes_handlers_named_by_module(ports: Ports) -> None:
    with pytest.raises(ValueError, match="module:attribute"):
        make_server(ports, port=0, workers=1, routes=[Route("/", "stub", lambda event, context: {})])


def test_closing_the_server_stops_its_workers(ports: Ports) -> None:
    with running_server(ports, "local", routes=_stub("pid"), workers=2) as server:
        server.server.gateway.warm_up()
        pid = server.request("GET", "recognition/v2/x/").json()["pid"]
        pools = server.server.gateway.functions
        assert pid in [p for pool in pools for p in pool.worker_pids()]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_handler_past_the_time_limit_is_a_504_and_its_worker_is_replaced(ports: Ports, tmp_path: Path) -> None:
    release = tmp_path / "release"
    with running_server(ports, "local", routes=_stub("hold"), workers=1, timeout_seconds=3) as server:
        pool = server.server.gateway.functions[0]
        pool.warm_up()  # the time limit is for the handler, not for this machine's cold start
        held = server.request("GET", f"recognition/v2/hold/?started={tmp_path / 'first'}&release={release}")
        assert held.status_code == 504 and "time limit" in held.json()["detail"]
        assert not release.exists()  # stopped by the 3 s limit, not let go by the handler's own 60 s
        first = int((tmp_path / "first").read_text())
        assert first not in pool.worker_pids()  # stopped, not reused
        release.write_text("go")
        pool.warm_up()
        again = server.request("GET", f"recognition/v2/hold/?started={tmp_path / 'again'}&release={release}")
        assert again.status_code == 200
        assert again.json()["pid"] != first  # a new worker took the next request


def test_workers_share_the_cores_unless_onnxruntime_threads_are_configured(
    ports: Ports, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KESTREL_ORT_THREADS", raising=False)
    share = max(1, (os.cpu_count() or 1) // 2)
    with running_server(ports, "local", routes=_stub("threads"), workers=2) as server:
        server.server.gateway.warm_up()
        assert server.request("GET", "recognition/v2/x/").json()["threads"] == share  # 2 x share ~ cores
    monkeypatch.setenv("KESTREL_ORT_THREADS", "3")
    configured = replace(ports, settings=replace(ports.settings, vision=VisionSettings(ort_threads=3)))
    with running_server(configured, "local", routes=_stub("threads"), workers=2) as server:
        server.server.gateway.warm_up()
        assert server.request("GET", "recognition/v2/x/").json()["threads"] == 3


def test_stopping_while_a_worker_starts_is_a_quiet_stop_not_a_failure(ports: Ports) -> None:
    """`kestrel serve` stopped during its warm-up: the half-started worker ends with the gateway, and
    the warm-up says "stopping" (which the CLI does not log as a broken handler)."""
    routes = [Route("/", "stub-slow", "tests.local.slow_start_handlers:handler")]
    with running_server(ports, "local", routes=routes, workers=1) as server:
        pool = server.server.gateway.functions[0]
        raised: list[BaseException] = []

        def warm_up() -> None:
            try:
                pool.warm_up()
            except BaseException as error:  # noqa: BLE001 - looked at below
                raised.append(error)

        before = {child.pid for child in multiprocessing.active_children()}
        thread = threading.Thread(target=warm_up)
        thread.start()
        give_up = time.monotonic() + 30
        while not (starting := [c for c in multiprocessing.active_children() if c.pid not in before]):
            assert time.monotonic() < give_up, "the worker process never started"
            time.sleep(0.02)
        pool.close()
        starting[0].kill()  # what the interpreter's exit does to daemon children
        thread.join(timeout=30)
        assert len(raised) == 1 and isinstance(raised[0], GatewayStopping), raised
