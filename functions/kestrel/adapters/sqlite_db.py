"""The data folder's SQLite file, shared by the item store, the train queue and the local jobs.

One connection per thread (WAL, so readers never wait for the writer), and write transactions
that start with ``BEGIN IMMEDIATE``: they serialise against every other writer, threads and
processes alike, and either all land or none do."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


class SqliteDatabase:
    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        # Owner-only: the database holds token hashes and everyone's metadata. SQLite gives its
        # -wal and -shm files the database file's permissions.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _create_owner_only(path)
        self._local = threading.local()
        self.connect().executescript(schema)

    def connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: transactions are begun and ended explicitly (see ``writing``).
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _create_owner_only(path: Path) -> None:
    """Create the database file 0600 if it does not exist yet; never touch an existing one: closing
    any descriptor of a file drops every POSIX lock this process holds on it, including SQLite's
    (so an open-and-close on a database another connection here uses could corrupt it)."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
