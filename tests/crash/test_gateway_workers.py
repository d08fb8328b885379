"""SIGKILL one of the gateway's worker processes (not the server) while clients upload: each
request in its hands answers 5xx (502), never hangs; the pool starts a new worker and keeps
answering; every upload that was acknowledged is stored whole, and one that got a 5xx is either
absent or whole."""

from __future__ import annotations

import base64
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.api.http import Api
from tests.crash.checks import all_pages, duplicate_of, image_problems, integrity_problems, sha256, stored_problems
from tests.crash.photos import PhotoMaker
from tests.crash.server import CountingApi, Figures, Server, create_token
from tests.processes import free_port

pytestmark = pytest.mark.slow

CLIENTS = 3
WORKERS = 2


@dataclass
class Outcomes:
    acknowledged: dict[str, str] = field(default_factory=dict)  # image id -> content hash
    refused: list[bytes] = field(default_factory=list)  # answered 5xx: stored whole or not at all
    codes: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def pooled_server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data", free_port(), "--workers", str(WORKERS), "--no-worker")
    yield running
    running.stop()


def _upload(api: Api, data: bytes) -> requests.Response:
    return api.call("POST", "training-image/", json={"base64": base64.b64encode(data).decode()})


def _client(api: CountingApi, photo: PhotoMaker, stop: threading.Event, outcomes: Outcomes) -> None:
    while not stop.is_set():
        data = photo()
        response = _upload(api, data)  # no connection error expected: the server itself lives on
        with outcomes.lock:
            outcomes.codes.append(response.status_code)
            if response.status_code == 201:
                outcomes.acknowledged[response.json()["id"]] = sha256(data)
            elif response.status_code >= 500:
                outcomes.refused.append(data)


def _some_workers(server: Server) -> list[int]:
    """The gateway's workers, once it has any (a killed one is replaced on the next request)."""
    give_up = time.monotonic() + 60
    while not (workers := server.gateway_workers()):
        assert time.monotonic() < give_up, "the gateway started no worker processes"
        time.sleep(0.05)
    return workers


def _settle(api: Api, outcomes: Outcomes) -> list[str]:
    """Each upload that answered 5xx, sent again: stored now, or named as a duplicate (then whole)."""
    problems = []
    for data in outcomes.refused:
        response = _upload(api, data)
        if response.status_code == 201:
            continue
        image_id = duplicate_of(response.json().get("detail", "")) if response.status_code == 409 else None
        if image_id is None:
            problems.append(f"a refused upload, sent again, answered {response.status_code}: {response.text[:200]}")
            continue
        found = image_problems(api, image_id, sha256(data), set())
        problems += [f"a refused upload was stored half-written: {problem}" for problem in found]
    return problems


def test_killing_a_gateway_worker_mid_request_is_a_5xx_and_the_pool_recovers(pooled_server: Server) -> None:
    server = pooled_server
    figures = Figures(server)
    rng = random.Random(14)
    with figures.recorded():
        token = create_token(server.data_dir)
        server.start()
        outcomes = Outcomes()
        stop = threading.Event()
        clients = [
            threading.Thread(
                target=_client, args=(figures.requests.api(server, token), PhotoMaker(f"w{n}"), stop, outcomes)
            )
            for n in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        kills = answered_before_last_kill = 0
        try:
            # Kill until a kill has caught a worker mid-request (three clients keep two workers busy
            # nearly all the time, so the first kill usually does), and at least three times.
            while kills < 3 or 502 not in outcomes.codes:
                assert kills < 20, f"no kill caught a request in 20 tries: {sorted(set(outcomes.codes))}"
                time.sleep(rng.uniform(0.3, 1.0))
                workers = _some_workers(server)
                os.kill(rng.choice(workers), signal.SIGKILL)
                kills += 1
                answered_before_last_kill = len(outcomes.codes)
            time.sleep(2.0)  # the clients go on against the recovered pool
        finally:
            stop.set()
            for client in clients:
                client.join(timeout=120)
        assert not any(client.is_alive() for client in clients), "a request hung after a worker was killed"
        api = Api(server.url, token)
        problems = [f"an upload answered {code}" for code in set(outcomes.codes) - {201, 502}]
        problems += _settle(api, outcomes)
        listed = {image["id"] for image in all_pages(api, "training-image/?page_size=1000", problems)}
        for image_id, content_hash in outcomes.acknowledged.items():
            if image_id not in listed:
                problems.append(f"the acknowledged image {image_id} is not listed")
            else:
                problems += image_problems(api, image_id, content_hash, set())
        if 201 not in outcomes.codes[answered_before_last_kill:]:
            problems.append("no upload succeeded after the last kill: the pool did not recover")
        workers = server.gateway_workers()
        server.stop()
        problems += integrity_problems(server.database) + stored_problems(server.data_dir)
        give_up = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < give_up:
            time.sleep(0.05)
        problems += [f"worker {pid} outlived the server" for pid in workers if Path(f"/proc/{pid}").exists()]
        figures.acknowledged_writes = len(outcomes.acknowledged)
        figures.failures += problems
        assert problems == [], problems[:10]
