"""Throughput and latency under concurrent clients, on a server in its own process (127.0.0.1 only).

Each client is a thread with its own HTTP connection that sends requests back to back for a
bounded time; every answer that is not the expected status, and every connection error, counts
as an error. The clients run on the same two cores as the server: a real user's clients would
not, so these figures are a lower bound on what the server alone can do."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from bench.common import authorised, say, summary, timed
from kestrel.domain.entities import LabelType
from kestrel.ports import Ports
from kestrel.store import labels as label_records
from kestrel.store.accounts import authenticate
from kestrel.store.paging import PageRequest

Request = Callable[[requests.Session, int], requests.Response]
API = "recognition/v2/"


def under_load(token: str, request: Request, expected: int, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads sending ``request`` for ``seconds``: throughput, latency, errors."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(n: int) -> None:
        session = authorised(token)
        start.wait()
        sent = 0
        while time.perf_counter() < deadline[0]:
            began = time.perf_counter()
            try:
                ok = request(session, n * 1_000_000 + sent).status_code == expected
            except requests.RequestException:
                ok = False
            latencies[n].append(time.perf_counter() - began)
            errors[n] += not ok
            sent += 1
        session.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    elapsed = time.perf_counter() - began
    every = [latency for per_client in latencies for latency in per_client]
    return {
        "clients": clients,
        "requests": len(every),
        "errors": sum(errors),
        "per_second": len(every) / elapsed,
        **summary(every),
    }


def classify_load(
    url: str, token: str, task_id: str, image: bytes, levels: tuple[int, ...], seconds: float, floor_ms: float
) -> dict[str, Any]:
    """Classify one image per request at each concurrency level; where latency doubles."""
    body = {"task_id": task_id, "records": [{"_base64": base64.b64encode(image).decode()}]}

    def classify(session: requests.Session, _: int) -> requests.Response:
        return session.post(f"{url}{API}classify/", json=body, timeout=120)

    # Not measured: every worker process of the pool started and its model loaded (cold starts).
    under_load(token, classify, 200, 4, 3.0)
    rows = []
    for clients in levels:
        row = under_load(token, classify, 200, clients, seconds)
        rows.append(row)
        say(
            f"classify load, {clients} clients: {row['per_second']:.1f} req/s, median {row['median_ms']:.1f} ms, "
            f"p95 {row['p95_ms']:.1f} ms, {row['errors']} errors of {row['requests']}"
        )
    single = rows[0]["median_ms"]
    doubled = next((row["clients"] for row in rows if row["median_ms"] >= 2 * single), None)
    return {
        "levels": rows,
        "latency_doubles_at_clients": doubled,
        "floor_per_second": 1000 / floor_ms,
        "floor_ms": floor_ms,
    }


def crud_load(url: str, token: str, levels: tuple[int, ...], seconds: float) -> dict[str, Any]:
    """Create a label, list labels: half the clients do each, at each concurrency level."""

    def create(session: requests.Session, n: int) -> requests.Response:
        return session.post(f"{url}{API}label/", json={"name": f"load {n}"}, timeout=60)

    def list_first_page(session: requests.Session, _: int) -> requests.Response:
        return session.get(f"{url}{API}label/", params={"page_size": 50}, timeout=60)

    result: dict[str, Any] = {}
    for name, request, expected in (("create label", create, 201), ("list labels", list_first_page, 200)):
        rows = []
        for clients in levels:
            row = under_load(token, request, expected, clients, seconds)
            rows.append(row)
            say(
                f"{name}, {clients} clients: {row['per_second']:.0f} req/s, median {row['median_ms']:.1f} ms, "
                f"p95 {row['p95_ms']:.1f} ms, {row['errors']} errors"
            )
        result[name] = rows
    return result


def crud_floor(ports: Ports, token: str, repeats: int) -> dict[str, Any]:
    """The same two operations for the same owner (as many labels), straight on the item store, in
    process: no HTTP, no auth, no JSON."""
    owner = authenticate(ports.items, f"Token {token}")
    counter = iter(range(10**9))

    def create() -> None:
        label_records.create_label(ports.items, owner, f"floor {next(counter)}", LabelType.CATEGORY, "", "")

    def list_first_page() -> None:
        label_records.list_labels(ports.items, owner, PageRequest(page=1, page_size=50), None, None)

    return {
        "create label": summary(timed(create, repeats)),
        "list labels": summary(timed(list_first_page, repeats)),
    }
