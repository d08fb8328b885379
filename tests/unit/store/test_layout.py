"""store.layout and the SQLite upgrade at open: a data folder from before lists opens and shows
everything it held, through today's code."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from kestrel.adapters.folder_blobs import FolderBlobStore
from kestrel.adapters.sqlite_items import SqliteItemStore
from kestrel.adapters.url_signing import UrlSigner
from kestrel.ports.items import LIST, ORD, PK, SK, Item
from kestrel.store import keys
from kestrel.store.keys import Space
from kestrel.store.layout import upgrade_item
from tests.layout_sample import Sample, fill, shown, to_layout_1

OWNER = "3f1c2b9e-0000-4000-8000-000000000001"
OTHER_SPACE = Space(OWNER, "7d1e0000-0000-4000-8000-000000000003")

# The schema of a data folder's items before lists (layout 1).
_LAYOUT_1 = """
CREATE TABLE items (
    pk TEXT NOT NULL, sk TEXT NOT NULL, ord TEXT, data TEXT NOT NULL, PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX items_by_ord ON items (pk, ord) WHERE ord IS NOT NULL;
"""


def _every_item(path: Path) -> list[Item]:
    store = SqliteItemStore(path)
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT pk, sk FROM items ORDER BY pk, sk").fetchall()
    items = store.batch_get(found)
    store.close()
    return items


def _canonical(item: Item) -> str:
    return json.dumps(item, sort_keys=True)


def _layout_1_database(path: Path, items: list[Item]) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(_LAYOUT_1)
        for item in items:
            data = {k: v for k, v in item.items() if k not in (PK, SK, ORD)}
            db.execute(
                "INSERT INTO items (pk, sk, ord, data) VALUES (?, ?, ?, ?)",
                (item[PK], item[SK], item.get(ORD), json.dumps(data)),
            )


@pytest.fixture
def original(tmp_path: Path) -> tuple[Path, Sample]:
    path = tmp_path / "today.db"
    store = SqliteItemStore(path)
    sample = fill(store, FolderBlobStore(tmp_path / "blobs", UrlSigner(b"layout-test")))
    store.close()
    return path, sample


def test_upgrade_moves_each_workspace_entity_to_its_own_partition_and_list() -> None:
    task = {PK: keys.owner_pk(OWNER), SK: "T#t1", ORD: "T#2026#t1", "id": "t1"}
    assert upgrade_item(task) == {
        **task,
        PK: keys.task_key(Space.default_of(OWNER), "t1")[0],
        LIST: keys.task_list(Space.default_of(OWNER)),
    }
    image = {PK: keys.space_pk(OTHER_SPACE), SK: "I#i1", ORD: "I#2026#i1", "id": "i1"}
    assert upgrade_item(image)[PK] == keys.image_key(OTHER_SPACE, "i1")[0]
    assert upgrade_item(image)[LIST] == keys.image_list(OTHER_SPACE, "i1")
    membership = {PK: keys.space_pk(OTHER_SPACE), SK: "M#l1#i1", ORD: "M#l1#2026#i1"}
    assert upgrade_item(membership)[LIST] == keys.membership_list(OTHER_SPACE, "l1", "i1")
    marker = {PK: keys.owner_pk(OWNER), SK: "H#ab", "image_id": "i1"}
    assert upgrade_item(marker) == {**marker, PK: f"{keys.owner_pk(OWNER)}#H#ab"}  # in no list
    assert upgrade_item(image)[ORD] == image[ORD]  # ord unchanged: cursors given out stay valid


def test_upgrade_leaves_what_did_not_move_and_is_idempotent() -> None:
    unmoved = [
        {PK: keys.owner_pk(OWNER), SK: keys.PROFILE_SK, "email": "a@b.co"},
        {PK: keys.owner_pk(OWNER), SK: "K#tok", ORD: "K#2026#tok"},
        {PK: keys.owner_pk(OWNER), SK: f"W#{OTHER_SPACE.workspace_id}", ORD: "W#2026"},
        {PK: keys.token_key("ff" * 20)[0], SK: "TOKEN", "owner_id": OWNER},
        {PK: keys.OWNERS_PK, SK: OWNER},
        {PK: "JOB#m1", SK: "JOB", "owner_id": OWNER},
    ]
    for item in unmoved:
        assert upgrade_item(item) == item
    task = {PK: keys.space_pk(OTHER_SPACE), SK: "T#t1", ORD: "T#2026#t1"}
    once = upgrade_item(task)
    assert upgrade_item(once) == once
    assert task[PK] == keys.space_pk(OTHER_SPACE)  # the argument is not changed


def test_every_item_survives_a_round_trip_through_layout_1(original: tuple[Path, Sample]) -> None:
    path, _ = original
    items = _every_item(path)
    assert len(items) > 100
    assert sorted(map(_canonical, (upgrade_item(to_layout_1(item)) for item in items))) == sorted(
        map(_canonical, items)
    )


def test_a_database_from_before_lists_opens_upgraded_and_shows_everything(
    original: tuple[Path, Sample], tmp_path: Path
) -> None:
    path, sample = original
    today = SqliteItemStore(path)
    expected = shown(today, sample)
    today.close()
    old = tmp_path / "layout-1.db"
    _layout_1_database(old, [to_layout_1(item) for item in _every_item(path)])

    with pytest.raises(RuntimeError, match="open it through kestrel"):
        SqliteItemStore(old)  # without the upgrade: refused, never shown as empty
    upgraded = SqliteItemStore(old, upgrade=upgrade_item)
    assert shown(upgraded, sample) == expected
    assert upgraded.integrity_check() == "ok"
    upgraded.close()
    again = SqliteItemStore(old, upgrade=upgrade_item)  # a second open finds it upgraded already
    assert shown(again, sample) == expected
    again.close()
    assert sorted(map(_canonical, _every_item(old))) == sorted(map(_canonical, _every_item(path)))
    with sqlite3.connect(old) as db:
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "items_by_list" in indexes and "items_by_ord" not in indexes
