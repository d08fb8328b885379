"""Stub Lambda handlers that gateway worker processes import by name ("tests.local.pool_handlers:...").

They run in another process, so they take their instructions from the request (query string)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def _answer(payload: Any, status: int = 200) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(payload)}


def _query(event: dict[str, Any]) -> dict[str, str]:
    return dict(event.get("queryStringParameters") or {})


def pid(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Which process answered, and how much time the context says is left."""
    return _answer({"pid": os.getpid(), "remaining_ms": context.get_remaining_time_in_millis()})


def rendezvous(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Checks in under ``?dir=`` and waits (up to 20 s) until ``?n=`` handlers have checked in: only
    handlers that run at the same time meet."""
    query = _query(event)
    folder, wanted = Path(query["dir"]), int(query["n"])
    (folder / str(os.getpid())).write_text("here")
    give_up = time.monotonic() + 20
    while len(list(folder.iterdir())) < wanted and time.monotonic() < give_up:
        time.sleep(0.02)
    return _answer({"pid": os.getpid(), "met": len(list(folder.iterdir())) >= wanted})


def hold(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Writes ``?started=`` then holds its worker until the file ``?release=`` exists (at most 60 s)."""
    query = _query(event)
    Path(query["started"]).write_text(str(os.getpid()))
    give_up = time.monotonic() + 60
    while not Path(query["release"]).exists() and time.monotonic() < give_up:
        time.sleep(0.02)
    return _answer({"pid": os.getpid()})


def die(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Ends its process mid-request, as an out-of-memory kill or a crash in native code would."""
    os._exit(9)


def boom(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("secret internal state /srv/kestrel/x.py")


def threads(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The onnxruntime threads this worker's sessions get."""
    from kestrel.vision.session import _thread_count

    return _answer({"threads": _thread_count()})
