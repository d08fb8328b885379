"""Small WSGI helpers the gateway's parts share: JSON answers, request bodies, the 413 text."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kestrel.api.public import API_PREFIX
from kestrel.config import MB
from kestrel.local.events import status_line

StartResponse = Callable[..., Any]
Response = tuple[str, list[tuple[str, str]], bytes]

UPLOAD_URL_PATH = f"{API_PREFIX}/training-image/upload-url/"


def json_response(code: int, payload: Mapping[str, Any], headers: Iterable[tuple[str, str]] = ()) -> Response:
    body = json.dumps(payload).encode()
    return (
        status_line(code),
        [("Content-Type", "application/json"), *headers, ("Content-Length", str(len(body)))],
        body,
    )


def too_large_detail(size: int | None, limit: int) -> str:
    """Why a body was refused, and the upload flow that takes large images instead."""
    size_text = f"{size} bytes" if size is not None else "over the limit"
    return (
        f"The request body is {size_text}; one request may carry at most {limit} bytes "
        f"({limit / MB:.1f} MB), as on AWS where a synchronous Lambda request is capped at 6 MB. "
        f"Upload large images in three steps: POST {UPLOAD_URL_PATH} for an upload URL and an "
        f"upload_id, PUT the image bytes to that URL, then register the image with "
        f'POST {API_PREFIX}/training-image/ and {{"upload_id": ...}}.'
    )


def content_length(environ: Mapping[str, Any]) -> int | None:
    raw = str(environ.get("CONTENT_LENGTH") or "").strip()
    return int(raw) if raw.isdigit() else None


def read_body(environ: Mapping[str, Any], length: int | None) -> bytes:
    if not length:
        return b""
    stream = environ["wsgi.input"]
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(remaining, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
