"""What every benchmark shares: timing, summaries, the machine, a Kestrel server in its own process."""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests

from tests.processes import free_port, kestrel_command


def say(message: str) -> None:
    print(message, flush=True)


def timed(function: Callable[[], Any], repeats: int, warmup: int = 2) -> list[float]:
    """Seconds per call of ``function``, after ``warmup`` calls that are not counted."""
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(samples: Sequence[float], per: int = 1) -> dict[str, float]:
    """Median, p95 and p10 of ``samples`` (seconds) in ms, divided by ``per`` (images per call).
    p10 is near the uncontended cost: on a busy machine long calls are preempted more often."""
    return {
        "median_ms": 1000 * statistics.median(samples) / per,
        "p95_ms": 1000 * percentile(samples, 0.95) / per,
        "p10_ms": 1000 * percentile(samples, 0.10) / per,
        "samples": len(samples),
    }


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *["| " + " | ".join(r) + " |" for r in rows]]


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB, {platform.machine()}, Python {platform.python_version()}"


class ServerProcess:
    """``kestrel serve`` in its own process on 127.0.0.1, as a user runs it (load tests need the
    clients out of the server's process, or they would share its interpreter lock)."""

    def __init__(
        self, data_dir: Path, log: Path, options: Sequence[str] = (), environment: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            kestrel_command("serve", "--port", str(self.port), "--data-dir", str(data_dir), "--no-worker", *options),
            stdout=self._log,
            stderr=self._log,
            env={**os.environ, **(environment or {})},
        )

    def wait_until_listening(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"kestrel serve exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.005)
        raise RuntimeError("kestrel serve did not start listening")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def authorised(token: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    return session
