"""Review entries: one item per (image, task) saying where the image stands in the task's review
queue — queued (with the model's prediction and how unsure it was), reviewed or skipped.

The entry's ``ord`` carries its state and position (``keys.review_ord``): queued entries sort by
the uncertainty computed when classify stored the image, so the store's own index lists the queue
most uncertain first, a page at a time, and counts it, however long it is. Kept apart from
:mod:`kestrel.store.review` (the queue listing and the decisions) so that labelling and deleting
images (``store.images``) can settle entries without importing the listing."""

from __future__ import annotations

import contextlib
from typing import Any

from kestrel.domain.entities import Label, now_iso
from kestrel.domain.errors import NotFound
from kestrel.domain.review import sort_key
from kestrel.ports.items import LIST, ORD, PK, SK, Condition, ConditionFailed, Item, ItemStore, Put, Update
from kestrel.store import keys
from kestrel.store.keys import Space

QUEUED, REVIEWED, SKIPPED = "queued", "reviewed", "skipped"
#: The image item's map of its entries' states by task, written with each entry: the queue's
#: unpredicted part filters images by it without reading their entries.
MARKS = "reviews"


def _mark(space: Space, image_id: str, task_id: str, status: str) -> Update:
    """The image's own record of its state in the task; the image must (still) exist."""
    return Update(keys.image_key(space, image_id), map_set={MARKS: {task_id: status}}, condition=Condition(exists=True))


def enqueue(
    store: ItemStore, space: Space, task_id: str, image_id: str, prediction: dict[str, Any], uncertainty: float
) -> bool:
    """Queue a stored image for review in ``task_id``. Classified again while still queued, it
    takes the newer prediction and its place; once reviewed or skipped it stays so (False)."""
    key = keys.review_key(space, image_id, task_id)
    position = sort_key(uncertainty)
    item: Item = {
        **keys.placement(space, key, keys.review_ord(task_id, QUEUED, position, image_id)),
        "task_id": task_id,
        "image_id": image_id,
        "status": QUEUED,
        "uncertainty": float(position),
        "prediction": prediction,
        "queued": now_iso(),
    }
    try:
        store.transact([Put(item, Condition(exists=False)), _mark(space, image_id, task_id, QUEUED)])
        return True
    except ConditionFailed as failed:
        if failed.index == 1:  # the image was deleted meanwhile: nothing to queue
            return False
    newer = {name: item[name] for name in (ORD, "uncertainty", "prediction", "queued")}
    try:
        store.update(Update(key, set=newer, condition=Condition(equals={"status": QUEUED})))
    except ConditionFailed:  # decided (or gone) meanwhile: that stands
        return False
    return True


def decide(store: ItemStore, space: Space, task_id: str, image_id: str, status: str, label_ids: list[str]) -> Item:
    """Record a person's decision on an image (made or not yet an entry: an unpredicted image);
    the decision as stored."""
    when = now_iso()
    decision = {"task_id": task_id, "image_id": image_id, "status": status, "label_ids": label_ids, "decided": when}
    entry = Update(
        keys.review_key(space, image_id, task_id),
        set={LIST: keys.review_list(space, task_id), ORD: keys.review_ord(task_id, status, when, image_id), **decision},
        upsert=True,
    )
    try:
        store.transact([entry, _mark(space, image_id, task_id, status)])
    except ConditionFailed:
        raise NotFound(f"Training image {image_id} not found") from None
    return decision


def entries_of_image(store: ItemStore, space: Space, image_id: str) -> list[Item]:
    """The image's entries in every task (as many as tasks that stored or reviewed it)."""
    return list(store.query(keys.review_image_pk(space, image_id), keys.review_image_prefix(image_id)))


def settle(store: ItemStore, space: Space, image_id: str, label: Label) -> None:
    """The image got ``label`` (from any route): it is reviewed in each task the label belongs to
    where it was still queued, so the queue and its count stay true however it was labelled."""
    for entry in entries_of_image(store, space, image_id):
        task_id = str(entry["task_id"])
        if entry.get("status") != QUEUED or task_id not in label.task_ids:
            continue
        when = now_iso()
        reviewed = Update(
            (entry[PK], entry[SK]),
            set={
                ORD: keys.review_ord(task_id, REVIEWED, when, image_id),
                "status": REVIEWED,
                "label_ids": [label.id],
                "decided": when,
            },
            condition=Condition(equals={"status": QUEUED}),
        )
        with contextlib.suppress(ConditionFailed):  # decided (or deleted) meanwhile: that stands
            store.transact([reviewed, _mark(space, image_id, task_id, REVIEWED)])


def forget_image(store: ItemStore, space: Space, image_id: str) -> None:
    """The image is gone: so are its entries (after the image: a crash in between leaves an entry
    whose image is missing, which the listing passes over)."""
    for entry in entries_of_image(store, space, image_id):
        store.delete((entry[PK], entry[SK]))


def forget_task(store: ItemStore, space: Space, task_id: str) -> None:
    """The task is gone: so are its entries (the images' marks of it stay: ids are never reused,
    and nothing reads a mark without its task)."""
    queue = keys.review_list(space, task_id)
    for state in (QUEUED, REVIEWED, SKIPPED):
        for entry in list(store.query(queue, keys.review_ord_prefix(task_id, state), index="ord")):
            store.delete((entry[PK], entry[SK]))
