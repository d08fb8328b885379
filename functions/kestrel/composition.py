"""The composition root: the one place that reads the environment and builds the ports.

Handlers call ``get_ports()``; tests call ``build_ports(settings)`` with their own settings."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from kestrel.config import Settings
from kestrel.ports.blobs import BlobStore
from kestrel.ports.items import ItemStore


@dataclass(frozen=True)
class Ports:
    settings: Settings
    items: ItemStore
    blobs: BlobStore


def _local_secret(data_dir: Path) -> bytes:
    """The key that signs local blob URLs, made once per data folder (readable by its owner only)."""
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def build_ports(settings: Settings) -> Ports:
    if settings.runtime == "aws":
        from kestrel.adapters.dynamo_items import DynamoItemStore
        from kestrel.adapters.s3_blobs import S3BlobStore

        if not settings.table or not settings.bucket:
            raise ValueError("KESTREL_TABLE and KESTREL_BUCKET must be set when KESTREL_RUNTIME=aws")
        return Ports(settings, DynamoItemStore(settings.table), S3BlobStore(settings.bucket))

    from kestrel.adapters.folder_blobs import FolderBlobStore
    from kestrel.adapters.sqlite_items import SqliteItemStore
    from kestrel.adapters.url_signing import UrlSigner

    data_dir = settings.data_dir
    signer = UrlSigner(_local_secret(data_dir))
    return Ports(
        settings, SqliteItemStore(data_dir / "kestrel.db"), FolderBlobStore(data_dir / "blobs", signer)
    )


_ports: Ports | None = None


def get_ports() -> Ports:
    """The process's ports, built on first use from the environment."""
    global _ports
    if _ports is None:
        _ports = build_ports(Settings.from_env())
    return _ports


def set_ports(ports: Ports | None) -> None:
    """Install ports built elsewhere (the local gateway, tests); None forgets them."""
    global _ports
    _ports = ports
