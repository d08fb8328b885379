"""A ``kestrel serve`` subprocess on a fresh data folder, stopped (not killed) when the test ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crash.server import Server
from tests.processes import free_port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data", free_port())
    yield running
    running.stop()
