"""Changes that must act on every item of a list stay exact when the lists lag the writes, as
DynamoDB's global index does (moto and SQLite never lag, so this is the one place it is seen):
the lists are served from a snapshot taken before the latest writes (new items missing, deleted
ones still there) until the code waits for them (``wait_for_lists``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest

from kestrel.adapters.sqlite_items import SqliteItemStore
from kestrel.domain.errors import NotFound
from kestrel.ports.blobs import BlobStore
from kestrel.ports.items import Item
from kestrel.store import images, keys, labels
from kestrel.store.images import get_image, remove_label_from_image, wipe_label
from kestrel.store.keys import Space
from kestrel.store.labels import delete_label, get_label
from kestrel.store.lifecycle import create_version
from kestrel.store.tasks import delete_task
from kestrel.store.versions import get_model
from tests.unit.store.conftest import NewLabel, TrainableTask, Upload, space_items


class LaggingLists:
    """``store`` for reads by key and writes; its lists as they were at the last ``freeze``."""

    def __init__(self, store: SqliteItemStore, snapshot: Path) -> None:
        self.store, self.snapshot_path = store, snapshot
        self.snapshot: SqliteItemStore | None = None
        self.waits = 0

    def freeze(self) -> None:
        source, copy = sqlite3.connect(self.store.path), sqlite3.connect(self.snapshot_path)
        try:
            source.backup(copy)
        finally:
            source.close()
            copy.close()
        self.snapshot = SqliteItemStore(self.snapshot_path)

    def catch_up(self, _attempt: int = 0) -> None:
        self.waits += 1
        self.snapshot = None

    def _lists(self, index: str) -> SqliteItemStore:
        return self.snapshot if index == "ord" and self.snapshot is not None else self.store

    def query(self, pk: str, prefix: str = "", *, index: Literal["sk", "ord"] = "sk", **options: Any) -> Iterator[Item]:
        return self._lists(index).query(pk, prefix, index=index, **options)

    def count(self, pk: str, prefix: str = "", *, index: Literal["sk", "ord"] = "sk") -> int:
        return self._lists(index).count(pk, prefix, index=index)

    def batch_get(self, keys_: Sequence[tuple[str, str]]) -> list[Item]:
        return self.store.batch_get(keys_)

    def __getattr__(self, name: str) -> Any:  # get, put, update, delete, transact
        return getattr(self.store, name)


@pytest.fixture
def lagging(store: SqliteItemStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LaggingLists:
    lists = LaggingLists(store, tmp_path / "lists.db")
    # Waiting is when the index catches up.
    monkeypatch.setattr(labels, "wait_for_lists", lists.catch_up)
    monkeypatch.setattr(images, "wait_for_lists", lists.catch_up)
    return lists


def _stale_label(lagging: LaggingLists, owner: Space, upload: Upload, new_label: NewLabel) -> tuple[str, list[str]]:
    """A label on images a, b, c; then, unseen by the lists: d and e get it, a loses it."""
    label = new_label("cat")
    a, b, c = (upload(labels=[label]).id for _ in range(3))
    lagging.freeze()
    d, e = (upload(labels=[label]).id for _ in range(2))
    remove_label_from_image(lagging.store, owner, a, label)
    return label, [a, b, c, d, e]


def test_deleting_a_label_waits_for_the_images_its_list_does_not_show_yet(
    lagging: LaggingLists, owner: Space, upload: Upload, new_label: NewLabel
) -> None:
    label, ids = _stale_label(lagging, owner, upload, new_label)
    delete_label(lagging, owner, label)  # type: ignore[arg-type]
    assert lagging.waits == 1  # the exact counter said 2 images were left after the first pass
    with pytest.raises(NotFound):
        get_label(lagging.store, owner, label)
    for image_id in ids:
        assert label not in get_image(lagging.store, owner, image_id).label_ids
    assert space_items(lagging.store, owner, keys.membership_ord_prefix(label)) == []


def test_a_deleted_membership_still_listed_is_not_counted_twice(
    lagging: LaggingLists, owner: Space, upload: Upload, new_label: NewLabel
) -> None:
    label = new_label("cat")
    kept = new_label("dog")
    image = upload(labels=[label, kept]).id
    lagging.freeze()
    remove_label_from_image(lagging.store, owner, image, label)  # the list still shows it
    delete_label(lagging, owner, label)  # type: ignore[arg-type]
    assert lagging.waits == 0  # the counter was 0 already: nothing to wait for
    assert list(get_image(lagging.store, owner, image).label_ids) == [kept]
    assert get_label(lagging.store, owner, kept).images_count == 1


def test_wiping_a_label_deletes_the_images_its_list_does_not_show_yet(
    lagging: LaggingLists, owner: Space, blobs: BlobStore, upload: Upload, new_label: NewLabel
) -> None:
    label, (a, b, c, d, e) = _stale_label(lagging, owner, upload, new_label)
    assert wipe_label(lagging, blobs, owner, label) == 4  # type: ignore[arg-type]
    assert lagging.waits == 1
    for gone in (b, c, d, e):
        with pytest.raises(NotFound):
            get_image(lagging.store, owner, gone)
    assert not get_image(lagging.store, owner, a).label_ids  # it had lost the label: it stays
    assert space_items(lagging.store, owner, keys.membership_ord_prefix(label)) == []


def test_deleting_a_task_finds_a_version_its_list_does_not_show_yet(
    lagging: LaggingLists, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    lagging.freeze()
    model = create_version(lagging.store, owner, task.id)  # not in the lists yet
    assert model.id in delete_task(lagging, owner, task.id)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        get_model(lagging.store, owner, model.id)
    assert space_items(lagging.store, owner, "N#") == []
