"""The gateway's worker pool: throughput and latency under 1-16 clients for several sizes of the
pool and onnxruntime threads per worker (workers x threads ~ cores is the default), and whether
one slow request holds up another owner's (the head-of-line figure).

Each configuration is a fresh ``kestrel serve --workers W`` with ``KESTREL_ORT_THREADS=T`` on the
same data folder; the clients are threads on the same machine (see load.py)."""

from __future__ import annotations

import http.server
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import requests

from bench.common import ServerProcess, authorised, say
from bench.load import classify_load

#: (workers, onnxruntime threads per worker); the first is `kestrel serve`'s default on 2 cores.
CONFIGURATIONS = ((2, 1), (1, 2), (2, 2), (4, 1))


class _HeldImages(http.server.BaseHTTPRequestHandler):
    """Holds every answer until ``release`` is set: a slow image host."""

    release = threading.Event()
    arrived = threading.Semaphore(0)

    def do_GET(self) -> None:
        self.arrived.release()
        self.release.wait(timeout=60)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _median_ms(session: requests.Session, url: str, times: int) -> float:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        session.get(url, timeout=60).raise_for_status()
        spent.append(time.perf_counter() - started)
    return 1000 * statistics.median(spent)


def head_of_line(url: str, token: str, other_token: str, task_id: str, slow_port: int) -> dict[str, Any]:
    """Another owner's GET task/ (median of 20) while nothing runs, then while a classify of 10
    held URLs runs."""
    _HeldImages.release, _HeldImages.arrived = threading.Event(), threading.Semaphore(0)
    other = authorised(other_token)
    tasks = f"{url}recognition/v2/task/"
    _median_ms(other, tasks, 3)
    quiet = _median_ms(other, tasks, 20)
    records = [{"_url": f"http://localhost:{slow_port}/held-{n}.jpg"} for n in range(10)]
    classify = threading.Thread(
        target=lambda: authorised(token).post(
            f"{url}recognition/v2/classify/", json={"task_id": task_id, "records": records}, timeout=120
        )
    )
    classify.start()
    _HeldImages.arrived.acquire(timeout=60)
    busy = _median_ms(other, tasks, 20)
    overlapped = classify.is_alive()
    _HeldImages.release.set()
    classify.join(timeout=120)
    say(f"head of line: another owner's GET task/ {quiet:.1f} ms quiet, {busy:.1f} ms during a slow classify")
    return {"quiet_ms": quiet, "busy_ms": busy, "overlapped": overlapped}


def pool_study(
    data_dir: Path,
    log: Path,
    tokens: tuple[str, str],
    task_id: str,
    image: bytes,
    levels: tuple[int, ...],
    seconds: float,
    floor_ms: float,
) -> dict[str, Any]:
    """Every configuration: classify load at each level, and the head-of-line figure."""
    slow = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HeldImages)
    slow.daemon_threads = True
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    rows = []
    try:
        for workers, threads in CONFIGURATIONS:
            say(f"pool: {workers} workers x {threads} onnxruntime threads")
            environment = {"KESTREL_ORT_THREADS": str(threads), "KESTREL_FETCH_ALLOW_HOSTS": "localhost"}
            with ServerProcess(data_dir, log, ("--workers", str(workers)), environment) as served:
                served.wait_until_listening()
                load = classify_load(served.url, tokens[0], task_id, image, levels, seconds, floor_ms)
                blocking = head_of_line(served.url, tokens[0], tokens[1], task_id, slow.server_address[1])
            rows.append({"workers": workers, "threads": threads, "load": load, "head_of_line": blocking})
    finally:
        _HeldImages.release.set()
        slow.shutdown()
    return {"configurations": rows, "seconds": seconds}
