"""Fixtures for the port contract suites: every test runs once per adapter.

The AWS adapters run under moto's ``mock_aws`` with fake credentials, so no test can reach AWS.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from kestrel.adapters.dynamo_items import DynamoItemStore, create_table
from kestrel.adapters.folder_blobs import FolderBlobStore
from kestrel.adapters.s3_blobs import S3BlobStore, make_s3_client
from kestrel.adapters.sqlite_items import _PAGE as SQLITE_PAGE
from kestrel.adapters.sqlite_items import SqliteItemStore
from kestrel.adapters.url_signing import UrlSigner
from kestrel.ports.blobs import BlobStore
from kestrel.ports.items import ItemStore

BLOB_PREFIX = "run-1/"
DYNAMO_PAGE = 40  # Query page size forced on the DynamoDB adapter so a few items span pages


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    """moto for every AWS call, with fake credentials and a fixed region.

    Module-scoped because starting moto and building clients for each of a few hundred tests
    would dominate the run; each test still gets its own table or bucket.

    moto's backends are not thread-safe (a transaction deep-copies the whole table while other
    threads write to it). DynamoDB and S3 apply each request atomically, and the adapters rely on
    nothing more, so moto's request handling is serialised with a lock: the concurrency tests
    then exercise the adapters' own logic (retries, guarded map writes) between requests."""
    lock = threading.RLock()
    process_request = BotocoreStubber.process_request

    def one_at_a_time(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return process_request(self, request)

    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setattr(BotocoreStubber, "process_request", one_at_a_time)
        with mock_aws():
            yield


@pytest.fixture(scope="module")
def dynamodb_client(aws: None) -> Any:
    return boto3.client("dynamodb")


@pytest.fixture(scope="module")
def s3_client(aws: None) -> Any:
    return make_s3_client()


_names = itertools.count()


@dataclass
class ItemBackend:
    store: ItemStore
    kind: str
    bulk: int  # items enough to span several internal query pages of this adapter
    query_requests: Callable[[], int] | None = None  # Query calls sent so far (DynamoDB only)


@pytest.fixture(params=["sqlite", pytest.param("dynamodb", marks=pytest.mark.aws)])
def item_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ItemBackend]:
    if request.param == "sqlite":
        sqlite = SqliteItemStore(tmp_path / "items.db")
        yield ItemBackend(sqlite, "sqlite", bulk=SQLITE_PAGE * 2 + 200)
        sqlite.close()
        return
    client = request.getfixturevalue("dynamodb_client")
    table = f"kestrel-items-{next(_names)}"
    create_table(client, table)
    calls = {"Query": 0}

    def count_query(**_: object) -> None:
        calls["Query"] += 1

    client.meta.events.register("before-call.dynamodb.Query", count_query)
    store = DynamoItemStore(table, client, page_size=DYNAMO_PAGE)
    yield ItemBackend(store, "dynamodb", bulk=DYNAMO_PAGE * 3 + 10, query_requests=lambda: calls["Query"])
    client.meta.events.unregister("before-call.dynamodb.Query", count_query)
    client.delete_table(TableName=table)


@pytest.fixture
def items(item_backend: ItemBackend) -> ItemStore:
    return item_backend.store


@dataclass
class BlobBackend:
    store: BlobStore
    kind: str
    signer: UrlSigner | None = None  # the folder adapter's signer, to check its URLs
    bucket: str | None = None  # the S3 bucket


SECRET = b"contract-test-secret"


@pytest.fixture(params=["folder", pytest.param("s3", marks=pytest.mark.aws)])
def blob_backend(request: pytest.FixtureRequest, tmp_path: Path) -> BlobBackend:
    if request.param == "folder":
        signer = UrlSigner(SECRET)
        return BlobBackend(FolderBlobStore(tmp_path / "blobs", signer), "folder", signer=signer)
    client = request.getfixturevalue("s3_client")
    bucket = f"kestrel-blobs-{next(_names)}"
    client.create_bucket(Bucket=bucket)
    # page_size=2: listing even a handful of keys crosses ListObjectsV2 pages.
    return BlobBackend(S3BlobStore(bucket, client, prefix=BLOB_PREFIX, page_size=2), "s3", bucket=bucket)


@pytest.fixture
def blobs(blob_backend: BlobBackend) -> BlobStore:
    return blob_backend.store
