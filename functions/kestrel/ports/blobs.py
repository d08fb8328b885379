"""The blob store port: image bytes, thumbnails, embeddings and model files, by key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class BlobNotFound(Exception):
    """No blob is stored under that key."""


class BlobStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    def get(self, key: str) -> bytes:
        """The blob's bytes; raises BlobNotFound."""
        ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int:
        """The blob's length in bytes without reading it; raises BlobNotFound."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob; a missing key is not an error."""
        ...

    def list_keys(self, prefix: str) -> Iterator[str]: ...

    def download_url(self, key: str, expires_in: int, base_url: str) -> str:
        """A URL that lets whoever holds it GET the blob until it expires.

        ``base_url`` is the public root the request came in on (the local gateway serves the
        blob there); the S3 adapter presigns against the bucket and ignores it."""
        ...

    def upload_url(self, key: str, expires_in: int, base_url: str, max_bytes: int) -> str:
        """A URL that accepts one HTTP PUT of at most ``max_bytes`` to ``key`` until it expires."""
        ...
