"""``kestrel table migrate`` under moto: a table of the layout before the partition design (local
index, every workspace item in one partition), filled through the old key shapes, is copied into a
table of today's layout; today's store code then reads back everything the original showed. The
copy is resumable after a failure mid-way and repeatable."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kestrel.adapters.dynamo_copy import copy_table
from kestrel.adapters.dynamo_expressions import item_from_dynamo
from kestrel.adapters.dynamo_items import DynamoItemStore, create_table
from kestrel.adapters.folder_blobs import FolderBlobStore
from kestrel.adapters.sqlite_items import SqliteItemStore
from kestrel.adapters.url_signing import UrlSigner
from kestrel.cli.main import main
from kestrel.ports.items import LIST, ORD, PK, SK, Item
from kestrel.store.layout import upgrade_item
from tests.cli.conftest import one_line_error
from tests.conftest import AWS_REGION
from tests.layout_sample import Sample, fill, shown, to_layout_1

pytestmark = pytest.mark.aws

OLD, NEW = "kestrel-layout-1", "kestrel-layout-2"


def create_layout_1_table(client: Any, name: str) -> None:
    """The item table as the adapter created it before lists: a local index on ``ord``."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in (PK, SK, ORD)],
        KeySchema=[{"AttributeName": PK, "KeyType": "HASH"}, {"AttributeName": SK, "KeyType": "RANGE"}],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by_ord",
                "KeySchema": [{"AttributeName": PK, "KeyType": "HASH"}, {"AttributeName": ORD, "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def _scan(client: Any, table: str) -> list[Item]:
    items: list[Item] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items += [item_from_dynamo(raw) for raw in page["Items"]]
    return items


def _canonical(items: list[Item]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in items)


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteItemStore, Sample, list[Item]]:
    """The sample data written by today's code (SQLite), and every item of it."""
    root = tmp_path_factory.mktemp("layout-sample")
    store = SqliteItemStore(root / "items.db")
    sample = fill(store, FolderBlobStore(root / "blobs", UrlSigner(b"layout-test")))
    with sqlite3.connect(root / "items.db") as db:
        keys = db.execute("SELECT pk, sk FROM items").fetchall()
    return store, sample, store.batch_get(keys)


@pytest.fixture
def tables(monkeypatch: pytest.MonkeyPatch, original: tuple[SqliteItemStore, Sample, list[Item]]) -> Iterator[Any]:
    """Under moto: OLD holding the sample at its layout-1 keys, NEW empty with today's schema."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=AWS_REGION)
        create_layout_1_table(client, OLD)
        create_table(client, NEW)
        old = DynamoItemStore(OLD, client)
        for item in original[2]:
            old.put(to_layout_1(item))
        yield client


def test_the_old_table_really_is_layout_1(tables: Any, original: tuple[SqliteItemStore, Sample, list[Item]]) -> None:
    stored = _scan(tables, OLD)
    assert len(stored) == len(original[2]) > 100
    assert not any(LIST in item for item in stored)
    owner_partition = [item for item in stored if item[PK] == f"O#{original[1].owner_id}"]
    assert {str(item[SK])[:2] for item in owner_partition} >= {"T#", "L#", "I#", "H#", "M#", "V#", "N#"}


def test_a_copy_stopped_midway_resumes_from_its_checkpoint_and_shows_everything(
    tables: Any, original: tuple[SqliteItemStore, Sample, list[Item]], tmp_path: Path
) -> None:
    store, sample, items = original
    checkpoint = tmp_path / "copy.json"
    calls = {"n": 0}

    def failing_midway(item: Item) -> Item:
        calls["n"] += 1
        if calls["n"] == 60:
            raise ConnectionError("the network went away")
        return upgrade_item(item)

    with pytest.raises(ConnectionError):
        copy_table(tables, OLD, NEW, failing_midway, segments=3, checkpoint=checkpoint, page_size=5)
    saved = json.loads(checkpoint.read_text())
    assert saved["source"] == OLD and saved["segments"] == 3
    assert 0 < len(_scan(tables, NEW)) < len(items)  # part of it was copied

    report = copy_table(tables, OLD, NEW, upgrade_item, segments=3, checkpoint=checkpoint, page_size=5)
    assert report.resumed
    assert report.read < len(items)  # it did not start again from the beginning
    assert set(json.loads(checkpoint.read_text())["positions"].values()) == {"done"}

    assert _canonical(_scan(tables, NEW)) == _canonical(items)  # every item, at today's key, nothing else
    assert shown(DynamoItemStore(NEW, tables, page_size=4), sample) == shown(store, sample)


def test_the_cli_command_copies_a_table_and_can_be_run_again(
    tables: Any,
    original: tuple[SqliteItemStore, Sample, list[Item]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, sample, items = original
    argv = ["table", "migrate", "--source", OLD, "--target", NEW, "--segments", "2"]
    assert main([*argv, "--checkpoint", str(tmp_path / "first.json")]) == 0
    out = capsys.readouterr().out
    assert f"Copied {len(items):,} items from {OLD} to {NEW}." in out
    assert main([*argv, "--checkpoint", str(tmp_path / "again.json")]) == 0  # idempotent
    assert _canonical(_scan(tables, NEW)) == _canonical(items)
    assert shown(DynamoItemStore(NEW, tables), sample) == shown(store, sample)
    # A finished checkpoint: running again with it copies nothing more.
    assert main([*argv, "--checkpoint", str(tmp_path / "first.json")]) == 0
    assert "Copied 0 items" in capsys.readouterr().out


def test_the_cli_refuses_a_target_of_the_old_layout_and_a_foreign_checkpoint(
    tables: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["table", "migrate", "--source", NEW, "--target", OLD])
    one_line_error(code, capsys.readouterr().err, f"table {OLD} has no global index by_list")
    code = main(["table", "migrate", "--source", OLD, "--target", OLD])
    one_line_error(code, capsys.readouterr().err, "the same table")
    checkpoint = tmp_path / "other.json"
    checkpoint.write_text(json.dumps({"source": "x", "target": NEW, "segments": 4, "positions": {}}))
    code = main(["table", "migrate", "--source", OLD, "--target", NEW, "--checkpoint", str(checkpoint)])
    one_line_error(code, capsys.readouterr().err, "belongs to another copy")
    code = main(["table", "migrate", "--source", OLD, "--target", NEW, "--segments", "0"])
    one_line_error(code, capsys.readouterr().err, "--segments must be between 1 and 64")
