"""The composition root: the one place that reads the environment and builds the ports.

Handlers call ``get_ports()``; tests call ``build_ports(settings)`` with their own settings."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from kestrel.config import Settings
from kestrel.ports import Ports

_KEY_HEX = re.compile(r"[0-9a-f]{64}")


def _read_key(path: Path) -> bytes | None:
    """The key in ``path``; None when there is none or it is damaged (e.g. empty)."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return bytes.fromhex(text) if _KEY_HEX.fullmatch(text) else None


def _local_secret(data_dir: Path) -> bytes:
    """The key that signs local blob URLs, made once per data folder (readable by its owner only).

    Written whole or not at all: a first start killed midway must not leave an empty key, with
    which anyone could sign URLs. The new key is written to a temporary file, synced, then linked
    into place (exactly one of several starting processes wins) or, over a damaged key, renamed."""
    path = data_dir / "secret.key"
    key = _read_key(path)
    if key is not None:
        return key
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fresh = data_dir / f".secret.key.{os.getpid()}.tmp"
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32))
        out.flush()
        os.fsync(out.fileno())
    try:
        if path.exists():
            os.replace(fresh, path)  # damaged: nothing valid was ever signed with it
        else:
            os.link(fresh, path)
    except FileExistsError:
        pass  # another process created it just now: use theirs
    finally:
        fresh.unlink(missing_ok=True)
    key = _read_key(path)
    if key is None:
        raise RuntimeError(f"cannot create a valid signing key in {path}")
    return key


def build_ports(settings: Settings) -> Ports:
    if settings.runtime == "aws":
        from kestrel.adapters.apigw_usage import ApiGatewayUsageKeys
        from kestrel.adapters.aws_jobs import SageMakerJobLauncher, SqsTrainQueue
        from kestrel.adapters.dynamo_items import DynamoItemStore
        from kestrel.adapters.s3_blobs import S3BlobStore
        from kestrel.adapters.ses_mail import SesMailer

        if not settings.table or not settings.bucket:
            raise ValueError("KESTREL_TABLE and KESTREL_BUCKET must be set when KESTREL_RUNTIME=aws")
        job_environment = {
            "KESTREL_RUNTIME": "aws",
            "KESTREL_TABLE": settings.table,
            "KESTREL_BUCKET": settings.bucket,
        }
        return Ports(
            settings,
            DynamoItemStore(settings.table),
            S3BlobStore(settings.bucket),
            SqsTrainQueue(settings.training.queue_url),
            SageMakerJobLauncher(settings.training, settings.bucket, job_environment),
            SesMailer(settings.mail),
            ApiGatewayUsageKeys(settings.usage_plan_id) if settings.usage_plan_id else None,
        )

    from kestrel.adapters.folder_blobs import FolderBlobStore
    from kestrel.adapters.outbox_mail import OutboxMailer
    from kestrel.adapters.sqlite_items import SqliteItemStore
    from kestrel.adapters.sqlite_jobs import LocalJobLauncher, SqliteTrainQueue
    from kestrel.adapters.url_signing import UrlSigner
    from kestrel.store.layout import upgrade_item

    data_dir = settings.data_dir
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner-only, like the files in it
    signer = UrlSigner(_local_secret(data_dir))
    database = data_dir / "kestrel.db"
    return Ports(
        settings,
        SqliteItemStore(database, upgrade=upgrade_item),  # a database from before lists is re-keyed once
        FolderBlobStore(data_dir / "blobs", signer),
        SqliteTrainQueue(database),
        LocalJobLauncher(database),
        OutboxMailer(data_dir / "outbox", settings.mail),
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
