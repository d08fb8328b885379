"""Running Kestrel's own command line as a separate process, as a user does (crash tests, benchmarks)."""

from __future__ import annotations

import socket
import sys


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kestrel_command(*args: str) -> list[str]:
    """The CLI run by this interpreter (the venv's): the process is python itself, so a signal to it
    reaches the server and nothing in between."""
    return [sys.executable, "-c", "from kestrel.cli.main import main; raise SystemExit(main())", *args]
