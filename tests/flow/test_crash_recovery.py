"""SIGKILL the local server while it trains; after a restart the version ends Trained or Failed,
never stuck in Training, and the SQLite file is intact."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.api.http import Api
from tests.flow.conftest import make_trainable_task

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kestrel(*args: str) -> list[str]:
    return [sys.executable, "-c", "from kestrel.local.cli import main; raise SystemExit(main())", *args]


class Server:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.url = f"http://localhost:{port}/"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.data_dir.parent / "server.log").open("ab")
        self.process = subprocess.Popen(
            _kestrel("serve", "--port", str(self.port), "--data-dir", str(self.data_dir)), stdout=log, stderr=log
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}recognition/v2/openapi.json", timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError("the server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data", _free_port())
    yield running
    running.stop()


def _token(data_dir: Path) -> str:
    out = subprocess.run(
        _kestrel("token", "create", "--email", "crash@example.com", "--data-dir", str(data_dir)),
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _wait_for(api: Api, model_id: str, states: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = api.get(f"model/{model_id}")["train_status"]
        if status in states:
            return status
        time.sleep(0.05)
    raise AssertionError(f"model stayed {status!r}, wanted one of {states}")


def test_sigkill_during_training_then_restart(server: Server) -> None:
    token = _token(server.data_dir)
    server.start()
    api = Api(server.url, token)
    trainable = make_trainable_task(api)
    counts_before = [api.get(f"label/{label['id']}")["images_count"] for label in trainable.labels]
    model = api.post(f"task/{trainable.task['id']}/train/", status=201)
    _wait_for(api, model["id"], {"Training"}, timeout=60)
    _wait_for_training_process(server.data_dir, timeout=120)
    server.kill()  # mid-training: the job's subprocess dies with the server

    with sqlite3.connect(server.data_dir / "kestrel.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    server.start()
    final = _wait_for(api, model["id"], {"Trained", "Failed"}, timeout=180)
    assert final == "Trained", api.get(f"model/{model['id']}")
    with sqlite3.connect(server.data_dir / "kestrel.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        jobs = db.execute("SELECT status, attempts FROM train_jobs").fetchall()
    assert jobs == [("Completed", 2)]
    assert [api.get(f"label/{label['id']}")["images_count"] for label in trainable.labels] == counts_before
    assert api.get(f"task/{trainable.task['id']}")["production_version"] == 1
    # Nothing is left running from the killed server.
    assert not _training_processes(server.data_dir)


def _training_processes(data_dir: Path) -> list[str]:
    """Training subprocesses working on ``data_dir`` (other tests may train at the same time)."""
    mine = f"KESTREL_DATA_DIR={data_dir}".encode()
    return [
        pid
        for pid in os.listdir("/proc")
        if pid.isdigit() and "kestrel.training.entry" in _cmdline(pid) and mine in _environ(pid)
    ]


def _environ(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _wait_for_training_process(data_dir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _training_processes(data_dir):
            return
        time.sleep(0.02)
    raise AssertionError("the worker never started the training process")


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:  # the process ended while we looked
        return ""
