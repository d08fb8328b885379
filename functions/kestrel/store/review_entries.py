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
from kestrel.domain.review import sort_key
from kestrel.ports.items import ORD, PK, SK, Condition, ConditionFailed, Item, ItemStore, Update
from kestrel.store import keys
from kestrel.store.keys import Space

QUEUED, REVIEWED, SKIPPED = "queued", "reviewed", "skipped"


def enqueue(
    store: ItemStore, space: Space, task_id: str, image_id: str, prediction: dict[str, Any], uncertainty: float
) -> bool:
    """Queue a stored image for review in ``task_id``. Classified again while still queued, it
    takes the newer prediction and its place; once reviewed or skipped it stays so (False)."""
    pk, sk = keys.review_key(space, image_id, task_id)
    position = sort_key(uncertainty)
    item: Item = {
        PK: pk,
        SK: sk,
        ORD: keys.review_ord(task_id, QUEUED, position, image_id),
        "task_id": task_id,
        "image_id": image_id,
        "status": QUEUED,
        "uncertainty": float(position),
        "prediction": prediction,
        "queued": now_iso(),
    }
    try:
        store.put(item, Condition(exists=False))
        return True
    except ConditionFailed:
        pass
    newer = {name: item[name] for name in (ORD, "uncertainty", "prediction", "queued")}
    try:
        store.update(Update((pk, sk), set=newer, condition=Condition(equals={"status": QUEUED})))
    except ConditionFailed:  # decided (or gone) meanwhile: that stands
        return False
    return True


def decide(store: ItemStore, space: Space, task_id: str, image_id: str, status: str, label_ids: list[str]) -> Item:
    """Record a person's decision on an image (made or not yet an entry: an unpredicted image)."""
    when = now_iso()
    return store.update(
        Update(
            keys.review_key(space, image_id, task_id),
            set={
                ORD: keys.review_ord(task_id, status, when, image_id),
                "task_id": task_id,
                "image_id": image_id,
                "status": status,
                "label_ids": label_ids,
                "decided": when,
            },
            upsert=True,
        )
    )


def entries_of_image(store: ItemStore, space: Space, image_id: str) -> list[Item]:
    """The image's entries in every task (as many as tasks that stored or reviewed it)."""
    return list(store.query(keys.space_pk(space), keys.review_image_prefix(image_id)))


def settle(store: ItemStore, space: Space, image_id: str, label: Label) -> None:
    """The image got ``label`` (from any route): it is reviewed in each task the label belongs to
    where it was still queued, so the queue and its count stay true however it was labelled."""
    for entry in entries_of_image(store, space, image_id):
        task_id = str(entry["task_id"])
        if entry.get("status") != QUEUED or task_id not in label.task_ids:
            continue
        when = now_iso()
        with contextlib.suppress(ConditionFailed):  # decided meanwhile: that decision stands
            store.update(
                Update(
                    (entry[PK], entry[SK]),
                    set={
                        ORD: keys.review_ord(task_id, REVIEWED, when, image_id),
                        "status": REVIEWED,
                        "label_ids": [label.id],
                        "decided": when,
                    },
                    condition=Condition(equals={"status": QUEUED}),
                )
            )


def forget_image(store: ItemStore, space: Space, image_id: str) -> None:
    """The image is gone: so are its entries (after the image: a crash in between leaves an entry
    whose image is missing, which the listing passes over)."""
    for entry in entries_of_image(store, space, image_id):
        store.delete((entry[PK], entry[SK]))


def forget_task(store: ItemStore, space: Space, task_id: str) -> None:
    """The task is gone: so are its entries."""
    pk = keys.space_pk(space)
    for state in (QUEUED, REVIEWED, SKIPPED):
        for entry in list(store.query(pk, keys.review_ord_prefix(task_id, state), index="ord")):
            store.delete((entry[PK], entry[SK]))
