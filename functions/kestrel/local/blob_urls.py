"""Signed blob URLs: what S3 presigned URLs do on AWS, for the folder blob store."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from kestrel.adapters.folder_blobs import FolderBlobStore
from kestrel.local.events import decoded_query, status_line
from kestrel.local.responses import Response, content_length, json_response, read_body
from kestrel.ports.blobs import BlobNotFound


def sniff_content_type(data: bytes, key: str) -> str:
    signatures = (
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"BM", "image/bmp"),
        (b"II*\x00", "image/tiff"),
        (b"MM\x00*", "image/tiff"),
    )
    for magic, media in signatures:
        if data.startswith(magic):
            return media
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    suffixes = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".json": "application/json"}
    for suffix, media in suffixes.items():
        if key.lower().endswith(suffix):
            return media
    return "application/octet-stream"


def blob_response(
    environ: Mapping[str, Any], method: str, key: str, store: FolderBlobStore, default_limit: int
) -> Response:
    """GET or PUT one blob through a signed URL (``default_limit``: the upload cap when unsigned)."""
    query = decoded_query(environ)
    expires, sig, max_bytes = query.get("expires", ""), query.get("sig", ""), query.get("max_bytes", "0")
    if method not in ("GET", "PUT"):
        return json_response(
            405,
            {"detail": f"{method} is not allowed on blob URLs; use GET or PUT"},
            [("Allow", "GET, PUT")],
        )
    if not key or not store.signer.verify(method, key, expires, sig, max_bytes):
        return json_response(
            403, {"detail": "This URL's signature is invalid or has expired; ask the API for a new URL"}
        )
    if method == "GET":
        return _download(store, key)
    return _upload(environ, store, key, int(max_bytes or "0") or default_limit)


def _download(store: FolderBlobStore, key: str) -> Response:
    try:
        data = store.get(key)
    except BlobNotFound:
        return json_response(404, {"detail": "Nothing is stored at this URL (it may have been deleted)"})
    headers = [
        ("Content-Type", sniff_content_type(data, key)),
        ("Content-Length", str(len(data))),
        ("Cache-Control", "private, max-age=300"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    return status_line(200), headers, data


def _upload(environ: Mapping[str, Any], store: FolderBlobStore, key: str, limit: int) -> Response:
    length = content_length(environ)
    if length is None:
        return json_response(411, {"detail": "Send the upload with a Content-Length header"})
    if length > limit:
        return json_response(413, {"detail": f"The upload is {length} bytes; this URL accepts at most {limit} bytes"})
    data = read_body(environ, length)
    store.put(key, data, str(environ.get("CONTENT_TYPE") or "application/octet-stream"))
    # S3 answers a PUT with the MD5 of the bytes as its ETag; clients may check it.
    return (
        status_line(200),
        [("ETag", f'"{hashlib.md5(data).hexdigest()}"'), ("Content-Length", "0")],
        b"",
    )
