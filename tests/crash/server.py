"""A real ``kestrel serve`` in a subprocess, to be SIGKILLed and started again on the same data folder.

Also the process-level helpers the crash tests share: a token made by the CLI, a count of the
requests sent, the training subprocesses working on a data folder, and the soak figures."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.api.http import Api
from tests.processes import kestrel_command
from tests.soak import record


class Server:
    """``kestrel serve`` (API and training worker) on ``data_dir``; its output goes to server.log."""

    def __init__(self, data_dir: Path, port: int, *options: str) -> None:
        self.data_dir, self.port = data_dir, port
        self.options = options  # more `kestrel serve` options, e.g. ("--workers", "2")
        self.url = f"http://localhost:{port}/"
        self.log_path = data_dir.parent / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    @property
    def database(self) -> Path:
        return self.data_dir / "kestrel.db"

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                kestrel_command("serve", "--port", str(self.port), "--data-dir", str(self.data_dir), *self.options),
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                # Connecting must be quick; the answer may wait for the first worker to start.
                requests.get(f"{self.url}recognition/v2/openapi.json", timeout=(2, 60))
                return
            except (requests.ConnectionError, requests.Timeout):
                # Not listening yet, or listening while its first worker processes start.
                time.sleep(0.05)
        raise AssertionError(f"the server did not start:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed by the server itself."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the server had already exited ({self.process.returncode}):\n{self.log_tail()}")
        workers = self.gateway_workers()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.kills += 1
        # Its worker processes die with it (parent-death signal), a moment later: the data is
        # only checked once no process of the server can still write.
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def gateway_workers(self) -> list[int]:
        """The gateway's worker processes: children of its fork server, itself a child of the server."""
        assert self.process is not None
        return [pid for child in _children(self.process.pid) for pid in _children(child) if _alive(pid)]

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def create_token(data_dir: Path, email: str = "crash@example.com") -> str:
    """A token made by ``kestrel token create`` (the token is the last line it prints)."""
    out = subprocess.run(
        kestrel_command("token", "create", "--email", email, "--data-dir", str(data_dir)),
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


class RequestCounter:
    """How many HTTP requests a test sent, over all its clients and threads."""

    def __init__(self) -> None:
        self.sent = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.sent += 1

    def api(self, server: Server, token: str) -> CountingApi:
        return CountingApi(server.url, token, self)


class CountingApi(Api):
    """An ``Api`` that counts each request it sends (the client of one thread)."""

    def __init__(self, base_url: str, token: str | None, counter: RequestCounter) -> None:
        super().__init__(base_url, token)
        self.counter = counter

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        self.counter.add()
        return super().call(method, path, **kwargs)


@dataclass
class Figures:
    """What one crash test did, added to the soak record when it ends, whether it passed or not
    (an exception that ends it early counts as one more failure)."""

    server: Server
    requests: RequestCounter = field(default_factory=RequestCounter)
    acknowledged_writes: int = 0
    failures: list[str] = field(default_factory=list)

    @contextmanager
    def recorded(self) -> Iterator[Figures]:
        escaped = True
        try:
            yield self
            escaped = False
        finally:
            record(
                "crash",
                kills=self.server.kills,
                requests=self.requests.sent,
                acknowledged_writes=self.acknowledged_writes,
                failures=len(self.failures) + escaped,
            )


def training_processes(data_dir: Path) -> list[str]:
    """Training subprocesses working on ``data_dir`` (other tests may train at the same time)."""
    mine = f"KESTREL_DATA_DIR={data_dir}".encode()
    return [
        pid
        for pid in os.listdir("/proc")
        if pid.isdigit() and "kestrel.handlers.training_job" in _cmdline(pid) and mine in _environ(pid)
    ]


def wait_for_training_process(data_dir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if training_processes(data_dir):
            return
        time.sleep(0.02)
    raise AssertionError("the worker never started the training process")


def wait_for_no_training_process(data_dir: Path, timeout: float = 10.0) -> list[str]:
    """The training processes still alive after ``timeout`` (PDEATHSIG may take a moment)."""
    deadline = time.monotonic() + timeout
    while (left := training_processes(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _environ(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:  # the process ended while we looked
        return ""


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (name) state ppid ...": the name may hold spaces, so read after its closing paren.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
