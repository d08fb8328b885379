"""A task's review queue: which stored images a person should label next, and their decisions.

The queue of a task, in this order:

1. **Predicted images**: images classify stored for this task (``store_images``) whose entry is
   still queued, most uncertain first (``store.review_entries``). The order is the store's own
   index on the uncertainty computed at store time, so pages are stable and cheap at any depth.
2. **Unpredicted images**: training images with no label at all and no entry for this task,
   newest first, without a prediction. Only the newest :data:`UNLABELLED_SCAN` images of the
   workspace are looked at (each listing counts them), so a listing's reads stay bounded.

An image leaves the queue when it gets one of the task's labels (by a review decision or by any
other route: ``review_entries.settle``), when it is skipped, or when it is deleted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from kestrel.domain.entities import Task, TaskType
from kestrel.domain.errors import InvalidInput
from kestrel.ports.items import ORD, Item, ItemStore
from kestrel.store import keys
from kestrel.store.images import IMAGE_PREFIX, add_label_to_image, get_image
from kestrel.store.keys import Space
from kestrel.store.paging import Page, PageRequest, merged, paginate
from kestrel.store.review_entries import MARKS, QUEUED, REVIEWED, SKIPPED, decide
from kestrel.store.versions import model_items_of_task

#: Newest training images of a workspace looked at for unpredicted, unlabelled ones.
UNLABELLED_SCAN = 1000
_BATCH = 100


def task_label_ids(task: Task) -> set[str]:
    """The labels that make an image "labelled" for the task (a tag task's negative label too)."""
    ids = set(task.label_ids)
    if task.negative_label_id:
        ids.add(task.negative_label_id)
    return ids


def list_queue(store: ItemStore, space: Space, task: Task, request: PageRequest) -> Page:
    """One page of the queue; each item is ``{"image": image item, "entry": entry or None}``."""
    pk = keys.review_list(space, task.id)
    queued_prefix = keys.review_ord_prefix(task.id, QUEUED)
    labelled_for_task = task_label_ids(task)

    def predicted(after: str | None) -> Iterator[Item]:
        entries = store.query(pk, queued_prefix, index="ord", after=after)
        while batch := list(islice(entries, _BATCH)):
            found = {
                str(item["id"]): item
                for item in store.batch_get([keys.image_key(space, str(e["image_id"])) for e in batch])
            }
            for entry in batch:
                image = found.get(str(entry["image_id"]))
                # Gone, or labelled for the task while settling failed: nothing left to review.
                if image is not None and not labelled_for_task & set(image.get("labels") or {}):
                    yield {ORD: entry[ORD], "image": image, "entry": entry}

    # Read once per request (at most UNLABELLED_SCAN images): it gives both the count and the page.
    newest = islice(merged(store, keys.image_lists(space), IMAGE_PREFIX, None, UNLABELLED_SCAN), UNLABELLED_SCAN)
    # No label at all, and nothing about it in this task (queued, reviewed, skipped).
    waiting = [image for image in newest if not image.get("labels") and task.id not in (image.get(MARKS) or {})]

    def unpredicted(after: str | None) -> Iterator[Item]:
        for image in waiting:
            if after is None or str(image[ORD]) < after:
                yield {ORD: image[ORD], "image": image, "entry": None}

    def walk(after: str | None, limit: int | None) -> Iterator[Item]:
        # ``limit`` is not passed on: entries whose image is gone or labelled are passed over, so
        # a page may need more; the queries are read lazily, a batch at a time.
        if after is None or after.startswith(queued_prefix):
            yield from predicted(after)
            after = None
        yield from unpredicted(after)

    count = store.count(pk, queued_prefix, index="ord") + len(waiting)
    return paginate(walk, request, count)


@dataclass(frozen=True)
class Decision:
    image_id: str
    status: str  # reviewed | skipped
    label_ids: list[str]
    decided: str


def review_image(store: ItemStore, space: Space, task: Task, image_id: str, label_ids: list[str]) -> Decision:
    """A person's labels for the image: they go on it (training data from now on) and the image
    leaves the queue. A category task takes exactly one of its labels; a tag task one or more of
    its tags, or its negative label alone ("none of these")."""
    chosen = list(dict.fromkeys(label_ids))
    _check_choice(task, chosen)
    image = get_image(store, space, image_id)  # 404 before anything changes
    held = sorted(task_label_ids(task) & set(image.label_ids) - set(chosen))
    if task.type == TaskType.MULTI_CLASS and held:
        raise InvalidInput(
            f"image {image_id} already has label {held[0]} of task '{task.name}' (a category task takes one); "
            "take it off first (training-image/{id}/remove-label/)"
        )
    for label_id in chosen:
        add_label_to_image(store, space, image_id, label_id)
    return _decision(decide(store, space, task.id, image_id, REVIEWED, chosen))


def skip_image(store: ItemStore, space: Space, task: Task, image_id: str) -> Decision:
    """Not now: the image leaves the queue unlabelled (it stays a training image)."""
    image = get_image(store, space, image_id)
    if task_label_ids(task) & set(image.label_ids):
        raise InvalidInput(f"image {image_id} already has a label of task '{task.name}'; there is nothing to skip")
    return _decision(decide(store, space, task.id, image_id, SKIPPED, []))


def _check_choice(task: Task, chosen: list[str]) -> None:
    if not chosen:
        raise InvalidInput("give 'label_ids' (the image's labels in this task), or 'skip': true")
    foreign = [label_id for label_id in chosen if label_id not in task_label_ids(task)]
    if foreign:
        raise InvalidInput(
            f"label(s) {', '.join(foreign)} are not labels of task '{task.name}'; "
            "pick from the task's labels (task/{id}/ lists them)"
        )
    if task.type == TaskType.MULTI_CLASS and len(chosen) != 1:
        raise InvalidInput(f"task '{task.name}' is multi_class: give exactly one label, not {len(chosen)}")
    if task.negative_label_id in chosen and len(chosen) > 1:
        raise InvalidInput("the negative label means 'none of the tags': give it alone")


def _decision(entry: Item) -> Decision:
    return Decision(
        str(entry["image_id"]), str(entry["status"]), list(entry.get("label_ids") or []), str(entry["decided"])
    )


@dataclass(frozen=True)
class Summary:
    queued: int  # predicted images still waiting (unpredicted ones are not counted here)
    reviewed: int
    skipped: int
    last_version: int | None  # the task's newest version, if any
    reviewed_since_last_version: int  # reviewed after that version was requested: the next one gains them


def summary(store: ItemStore, space: Space, task: Task) -> Summary:
    pk = keys.review_list(space, task.id)
    versions = model_items_of_task(store, space, task.id, task.versions_created)
    last = versions[-1] if versions else None
    reviewed_prefix = keys.review_ord_prefix(task.id, REVIEWED)
    if last is None:
        since = store.count(pk, reviewed_prefix, index="ord")
    else:
        since = sum(
            1 for _ in store.query(pk, reviewed_prefix, index="ord", after=reviewed_prefix + str(last["created"]))
        )
    return Summary(
        queued=store.count(pk, keys.review_ord_prefix(task.id, QUEUED), index="ord"),
        reviewed=store.count(pk, reviewed_prefix, index="ord"),
        skipped=store.count(pk, keys.review_ord_prefix(task.id, SKIPPED), index="ord"),
        last_version=int(last["version"]) if last else None,
        reviewed_since_last_version=since,
    )
