"""store.review and store.review_entries called directly: the bound on unpredicted images, paging
over both parts of the queue, settling entries when an image is labelled in several tasks, and
forgetting them with the image or the task."""

from __future__ import annotations

import pytest

from kestrel.domain.entities import TaskType
from kestrel.ports.blobs import BlobStore
from kestrel.ports.items import ItemStore
from kestrel.store import keys, review
from kestrel.store.images import add_label_to_image, delete_image, wipe_label
from kestrel.store.keys import Space
from kestrel.store.paging import PageRequest
from kestrel.store.review_entries import QUEUED, REVIEWED, enqueue
from kestrel.store.tasks import attach_label, create_task, delete_task, get_task
from tests.unit.store.conftest import NewLabel, Upload


def _ids(store: ItemStore, owner: Space, task_id: str, page: int = 1, size: int = 50) -> list[str]:
    found = review.list_queue(store, owner, get_task(store, owner, task_id), PageRequest(page, size))
    return [str(item["image"]["id"]) for item in found.items]


def test_unpredicted_images_are_looked_for_among_the_newest_only(
    store: ItemStore, owner: Space, upload: Upload, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = create_task(store, owner, "Bounded", "", TaskType.MULTI_CLASS)
    images = [upload().id for _ in range(5)]
    monkeypatch.setattr(review, "UNLABELLED_SCAN", 3)
    found = review.list_queue(store, owner, task, PageRequest(1, 50))
    assert found.count == 3
    assert [item["image"]["id"] for item in found.items] == images[::-1][:3]  # the newest three


def test_paging_runs_from_the_predicted_part_into_the_unpredicted_one(
    store: ItemStore, owner: Space, upload: Upload
) -> None:
    task = create_task(store, owner, "Paged", "", TaskType.MULTI_CLASS)
    predicted = [upload().id for _ in range(3)]
    plain = [upload().id for _ in range(3)]
    for image_id, uncertainty in zip(predicted, (0.05, 0.1, 0.2), strict=True):
        assert enqueue(store, owner, task.id, image_id, {"version": 1}, uncertainty)
    assert enqueue(store, owner, task.id, predicted[0], {"version": 2}, 0.3)  # classified again: moves
    expected = [predicted[1], predicted[2], predicted[0], *plain[::-1]]
    pages = []
    after = None
    for number in (1, 2, 3):
        found = review.list_queue(store, owner, task, PageRequest(number, 2, after))
        pages.extend(str(item["image"]["id"]) for item in found.items)
        after = found.next_after
    assert pages == expected and after is None
    assert _ids(store, owner, task.id, page=2, size=2) == expected[2:4]
    entry = store.get(keys.review_key(owner, predicted[0], task.id))
    assert entry is not None and entry["prediction"] == {"version": 2} and entry["uncertainty"] == 0.3
    review.skip_image(store, owner, task, predicted[1])
    assert not enqueue(store, owner, task.id, predicted[1], {"version": 3}, 0.0)  # a decision stands
    assert _ids(store, owner, task.id)[:2] == [predicted[2], predicted[0]]


def test_a_label_settles_the_image_in_every_task_it_belongs_to(
    store: ItemStore, blobs: BlobStore, owner: Space, upload: Upload, new_label: NewLabel
) -> None:
    first = create_task(store, owner, "First", "", TaskType.MULTI_CLASS)
    second = create_task(store, owner, "Second", "", TaskType.MULTI_CLASS)
    third = create_task(store, owner, "Third", "", TaskType.MULTI_CLASS)
    shared = new_label("shared")
    for task in (first, second):
        attach_label(store, owner, task.id, shared)
    image = upload().id
    for task in (first, second, third):
        enqueue(store, owner, task.id, image, {"version": 1}, 0.5)
    add_label_to_image(store, owner, image, shared)
    states = {task.id: store.get(keys.review_key(owner, image, task.id)) for task in (first, second, third)}
    assert {task_id: item["status"] for task_id, item in states.items() if item} == {
        first.id: REVIEWED,
        second.id: REVIEWED,
        third.id: QUEUED,  # the label is not one of its labels: still to review there
    }
    assert review.summary(store, owner, get_task(store, owner, first.id)).reviewed_since_last_version == 1
    assert _ids(store, owner, third.id) == [image]

    delete_image(store, blobs, owner, image)
    assert list(store.query(keys.space_pk(owner), keys.review_image_prefix(image))) == []


def test_entries_go_with_a_wiped_label_and_a_deleted_task(
    store: ItemStore, blobs: BlobStore, owner: Space, upload: Upload, new_label: NewLabel
) -> None:
    task = create_task(store, owner, "Gone", "", TaskType.MULTI_CLASS)
    doomed = new_label("doomed")
    wiped = upload(labels=[doomed]).id
    kept = upload().id
    for image_id in (wiped, kept):
        enqueue(store, owner, task.id, image_id, {"version": 1}, 0.5)
    wipe_label(store, blobs, owner, doomed)
    assert _ids(store, owner, task.id) == [kept]
    assert store.get(keys.review_key(owner, wiped, task.id)) is None
    delete_task(store, owner, task.id)
    assert store.get(keys.review_key(owner, kept, task.id)) is None
