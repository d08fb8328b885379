"""Blob store on a local folder: the embedded default for the local runtime.

Writes go to a temporary file and are renamed into place, so a reader (or a crash) never
sees half a blob. URLs are signed for the local gateway's ``/blobs/`` route."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kestrel.adapters.url_signing import UrlSigner
from kestrel.ports.blobs import BlobNotFound


class FolderBlobStore:
    def __init__(self, root: Path, signer: UrlSigner) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.signer = signer

    def _path(self, key: str) -> Path:
        if "\x00" in key:  # no file name holds one, so no such blob exists
            raise BlobNotFound(key)
        path = (self.root / key).resolve()
        # Keys come from our own code, but never let one escape the folder.
        if self.root not in path.parents:
            raise ValueError(f"blob key outside the store: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFound(key) from None

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFound(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    def download_url(self, key: str, expires_in: int, base_url: str) -> str:
        return self.signer.sign("GET", key, expires_in, base_url)

    def upload_url(self, key: str, expires_in: int, base_url: str, max_bytes: int) -> str:
        return self.signer.sign("PUT", key, expires_in, base_url, max_bytes)
