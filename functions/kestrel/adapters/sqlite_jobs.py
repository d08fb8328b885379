"""The training flow's local adapters, in the same SQLite file as the items: a durable queue of
train requests (with leases, like SQS's visibility timeout, and a dead-letter table) and the
table of local training jobs that the worker runs."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kestrel.adapters.sqlite_db import SqliteDatabase
from kestrel.ports.jobs import JobSpec, TrainRequest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS train_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS train_dead_letters (
    id INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    failed REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS train_jobs (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,          -- InProgress | Completed | Failed
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until REAL NOT NULL DEFAULT 0,
    holder TEXT NOT NULL DEFAULT '',   -- host:pid of the worker running it
    created REAL NOT NULL
);
"""


def _holder_is_gone(holder: str) -> bool:
    """True when the job's holder was a process on this host that no longer exists."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class Received:
    receipt: int
    request: TrainRequest
    receive_count: int


class SqliteTrainQueue:
    """SQS semantics: a received message is hidden for ``lease`` seconds; deleted when handled."""

    def __init__(self, path: Path, max_receives: int = 3) -> None:
        self._db = SqliteDatabase(path, _SCHEMA)
        self.max_receives = max_receives

    def send(self, request: TrainRequest) -> None:
        now = time.time()
        self._db.connect().execute(
            "INSERT INTO train_queue (body, visible_at, created) VALUES (?, ?, ?)",
            (json.dumps(request.to_message()), now, now),
        )

    def receive(self, lease: float = 300.0) -> Received | None:
        """The oldest visible message, now hidden for ``lease`` seconds; None if there is none.

        A message received ``max_receives`` times without being deleted goes to the dead letters."""
        while True:
            now = time.time()
            with self._db.writing() as conn:
                row = conn.execute(
                    "SELECT id, body, receive_count FROM train_queue WHERE visible_at <= ? ORDER BY id LIMIT 1",
                    (now,),
                ).fetchone()
                if row is None:
                    return None
                message_id, body, count = row
                if count >= self.max_receives:
                    conn.execute(
                        "INSERT OR REPLACE INTO train_dead_letters (id, body, receive_count, failed) "
                        "VALUES (?, ?, ?, ?)",
                        (message_id, body, count, now),
                    )
                    conn.execute("DELETE FROM train_queue WHERE id = ?", (message_id,))
                    continue
                conn.execute(
                    "UPDATE train_queue SET visible_at = ?, receive_count = receive_count + 1 WHERE id = ?",
                    (now + lease, message_id),
                )
            return Received(message_id, TrainRequest.from_message(json.loads(body)), count + 1)

    def delete(self, receipt: int) -> None:
        self._db.connect().execute("DELETE FROM train_queue WHERE id = ?", (receipt,))

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self._db.connect().execute("SELECT body, receive_count FROM train_dead_letters ORDER BY id").fetchall()
        return [{"request": json.loads(body), "receive_count": count} for body, count in rows]


@dataclass(frozen=True)
class LocalJob:
    spec: JobSpec
    attempts: int


class LocalJobLauncher:
    """Records jobs for the local worker to run; a name is launched once, like SageMaker's."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, _SCHEMA)

    def launch(self, spec: JobSpec) -> bool:
        cursor = self._db.connect().execute(
            "INSERT OR IGNORE INTO train_jobs (name, spec, status, created) VALUES (?, ?, 'InProgress', ?)",
            (spec.job_name, json.dumps(spec.__dict__), time.time()),
        )
        return cursor.rowcount == 1

    def claim(self, lease: float, holder: str) -> LocalJob | None:
        """An InProgress job nobody holds (new, its lease run out, or its holder process gone)."""
        now = time.time()
        with self._db.writing() as conn:
            rows = conn.execute(
                "SELECT name, spec, attempts, lease_until, holder FROM train_jobs WHERE status = 'InProgress' "
                "ORDER BY created"
            ).fetchall()
            chosen = next((row for row in rows if row[3] <= now or _holder_is_gone(row[4])), None)
            if chosen is None:
                return None
            conn.execute(
                "UPDATE train_jobs SET lease_until = ?, attempts = attempts + 1, holder = ? WHERE name = ?",
                (now + lease, holder, chosen[0]),
            )
        return LocalJob(JobSpec(**json.loads(chosen[1])), attempts=int(chosen[2]) + 1)

    def renew(self, name: str, lease: float) -> None:
        self._db.connect().execute(
            "UPDATE train_jobs SET lease_until = ? WHERE name = ? AND status = 'InProgress'",
            (time.time() + lease, name),
        )

    def finish(self, name: str, status: str) -> None:
        self._db.connect().execute("UPDATE train_jobs SET status = ? WHERE name = ?", (status, name))
