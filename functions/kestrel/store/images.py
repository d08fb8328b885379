"""Training images: upload with duplicate detection, labels, metadata, listing and deletion."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kestrel.domain.entities import (
    LEGACY_IMAGE_FILE,
    LEGACY_THUMB_FILE,
    TrainingImage,
    default_workspace_id,
    image_file_names,
    new_id,
    now_iso,
)
from kestrel.domain.errors import Conflict, InvalidInput, NotFound
from kestrel.ports.blobs import BlobStore
from kestrel.ports.items import ORD, PK, SK, Condition, ConditionFailed, Delete, Item, ItemStore, Put, Update
from kestrel.store import keys
from kestrel.store.checks import check_meta_data
from kestrel.store.keys import Space
from kestrel.store.labels import delete_label, get_label, get_labels, label_memberships, present_memberships
from kestrel.store.paging import LIST_LAG_ATTEMPTS, Page, PageRequest, count_lists, merged, paginate, wait_for_lists
from kestrel.store.review_entries import forget_image, settle
from kestrel.store.workspaces import create_guard, guard_failed, workspace_gone

IMAGE_PREFIX = "I#"


def duplicate_detail(image_id: str) -> str:
    """The ximilar client finds the existing image's id in this sentence with a regular expression."""
    return f"Training image ID: {image_id} already exists (the same bytes were uploaded before)"


def image_from_item(item: Item) -> TrainingImage:
    return TrainingImage(
        id=item["id"],
        owner_id=item["owner_id"],
        workspace_id=item.get("workspace") or default_workspace_id(item["owner_id"]),
        created=item["created"],
        content_hash=item["content_hash"],
        format=item["format"],
        mime=str(item.get("mime") or "application/octet-stream"),
        width=int(item["width"]),
        height=int(item["height"]),
        size_bytes=int(item.get("size_bytes", 0)),
        label_ids=dict(item.get("labels") or {}),
        meta_data=dict(item.get("meta_data") or {}),
        test_image=bool(item.get("test_image", False)),
        noresize=bool(item.get("noresize", False)),
        # Images stored before file names were unique have none: they keep their old names.
        file_name=str(item.get("file_name") or LEGACY_IMAGE_FILE),
        thumb_name=str(item.get("thumb_name") or LEGACY_THUMB_FILE),
    )


def image_item(image: TrainingImage) -> Item:
    """The stored form of ``image`` (what ``image_from_item`` reads back)."""
    space = keys.space_of(image)
    return {
        **keys.placement(space, keys.image_key(space, image.id), keys.image_ord(image.created, image.id)),
        "id": image.id,
        "owner_id": image.owner_id,
        "workspace": keys.space_of(image).workspace_id,
        "created": image.created,
        "content_hash": image.content_hash,
        "format": image.format,
        "mime": image.mime,
        "width": image.width,
        "height": image.height,
        "size_bytes": image.size_bytes,
        "labels": dict(image.label_ids),
        "meta_data": image.meta_data,
        "test_image": image.test_image,
        "noresize": image.noresize,
        "file_name": image.file_name,
        "thumb_name": image.thumb_name,
    }


def image_blob(image: TrainingImage) -> str:
    return keys.image_blob(image.owner_id, image.id, image.file_name)


def thumb_blob(image: TrainingImage) -> str:
    return keys.thumb_blob(image.owner_id, image.id, image.thumb_name)


def get_image(store: ItemStore, space: Space, image_id: str) -> TrainingImage:
    item = store.get(keys.image_key(space, image_id))
    if item is None:
        raise NotFound(f"Training image {image_id} not found")
    return image_from_item(item)


def images_by_id(store: ItemStore, space: Space, image_ids: list[str]) -> dict[str, TrainingImage]:
    """The images that still exist among ``image_ids``, by id, in one batch read."""
    items = store.batch_get([keys.image_key(space, image_id) for image_id in image_ids])
    return {str(item["id"]): image_from_item(item) for item in items}


@dataclass(frozen=True)
class CheckedImage:
    """Bytes proven to be an accepted image (by the caller: the store does not decode images)."""

    data: bytes
    content_hash: str
    format: str
    mime: str
    width: int
    height: int
    thumbnail: bytes  # a JPEG


def content_hash_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_duplicate(store: ItemStore, space: Space, content_hash: str) -> str | None:
    """The id of the owner's image with these bytes, if there is one."""
    existing = store.get(keys.content_key(space, content_hash))
    return None if existing is None else str(existing["image_id"])


#: Labels one training image may carry. Recording an image with its labels is one transaction of
#: 2 + 2 per label writes (DynamoDB takes at most 100), and so is deleting it: 48 labels fit.
MAX_LABELS_PER_IMAGE = 48


def _too_many_labels(count: int) -> InvalidInput:
    return InvalidInput(
        f"an image may carry at most {MAX_LABELS_PER_IMAGE} labels, and this would give it {count}; "
        "split the labels over several tasks, or use fewer per image"
    )


def add_image(
    store: ItemStore,
    blobs: BlobStore,
    space: Space,
    checked: CheckedImage,
    *,
    label_ids: list[str] | None = None,
    meta_data: dict[str, Any] | None = None,
    test_image: bool = False,
    noresize: bool = False,
) -> TrainingImage:
    """Store the bytes and the thumbnail, then record the image (with its labels) at once."""
    check_meta_data(meta_data)
    unique_labels = list(dict.fromkeys(label_ids or []))
    if len(unique_labels) > MAX_LABELS_PER_IMAGE:
        raise _too_many_labels(len(unique_labels))  # before anything is stored
    data, content_hash = checked.data, checked.content_hash
    duplicate = find_duplicate(store, space, content_hash)
    if duplicate is not None:
        raise Conflict(duplicate_detail(duplicate))
    labels = [get_label(store, space, label_id) for label_id in unique_labels]

    image_id = new_id()
    file_name, thumb_name = image_file_names(image_id, checked.format)
    image = TrainingImage(
        id=image_id,
        owner_id=space.owner_id,
        workspace_id=space.workspace_id,
        created=now_iso(),
        content_hash=content_hash,
        format=checked.format,
        mime=checked.mime,
        width=checked.width,
        height=checked.height,
        size_bytes=len(data),
        meta_data=dict(meta_data or {}),
        test_image=test_image,
        noresize=noresize,
        file_name=file_name,
        thumb_name=thumb_name,
    )
    image.label_ids = {label.id: image.created for label in labels}
    # Bytes first: an item that is visible always has its files; a crash in between leaves only
    # unreferenced blobs, never a record pointing at nothing.
    blobs.put(image_blob(image), data, checked.mime)
    blobs.put(thumb_blob(image), checked.thumbnail, "image/jpeg")
    item = image_item(image)
    hash_pk, hash_sk = keys.content_key(space, content_hash)
    writes: list[Put | Update | Delete] = [
        Put({PK: hash_pk, SK: hash_sk, "image_id": image.id}, Condition(exists=False)),
        Put(item, Condition(exists=False)),
    ]
    for label in labels:
        writes.extend(_label_writes(space, image, label.id, adding=True))
    writes.extend(create_guard(space))
    try:
        store.transact(writes)
    except ConditionFailed as failed:
        _remove_blobs(blobs, image)
        if guard_failed(space, writes, failed):
            raise workspace_gone(space) from None
        if failed.index == 0:  # the same bytes were stored by a concurrent request
            winner = store.get((hash_pk, hash_sk))
            raise Conflict(duplicate_detail(str(winner["image_id"]) if winner else "unknown")) from None
        raise NotFound("a label given for the image was deleted meanwhile; try again") from None
    return image


def _label_writes(space: Space, image: TrainingImage, label_id: str, adding: bool) -> list[Put | Update | Delete]:
    membership = keys.membership_key(space, label_id, image.id)
    label_key = keys.label_key(space, label_id)
    if adding:
        return [
            Put(
                {
                    **keys.placement(space, membership, keys.membership_ord(label_id, image.created, image.id)),
                    "image_id": image.id,
                    "label_id": label_id,
                }
            ),
            Update(label_key, increment={"images_count": 1}, condition=Condition(exists=True)),
        ]
    return [
        Delete(membership),
        Update(label_key, increment={"images_count": -1}, condition=Condition(exists=True)),
    ]


def add_label_to_image(store: ItemStore, space: Space, image_id: str, label_id: str) -> TrainingImage:
    """Label an image; labelling it again changes nothing."""
    image = get_image(store, space, image_id)
    label = get_label(store, space, label_id)
    if label_id in image.label_ids:
        return image
    if len(image.label_ids) >= MAX_LABELS_PER_IMAGE:
        raise _too_many_labels(len(image.label_ids) + 1)
    when = now_iso()
    try:
        store.transact(
            [
                Update(
                    keys.image_key(space, image_id),
                    map_set={"labels": {label_id: when}},
                    condition=Condition(map_lacks=("labels", label_id)),
                ),
                *_label_writes(space, image, label_id, adding=True),
            ]
        )
    except ConditionFailed as failed:
        if failed.index == 0:
            # Either labelled concurrently (fine) or the image was deleted meanwhile.
            return get_image(store, space, image_id)
        raise NotFound(f"Label {label_id} not found") from None
    settle(store, space, image_id, label)  # labelled for the label's tasks: out of their review queues
    return get_image(store, space, image_id)


def remove_label_from_image(store: ItemStore, space: Space, image_id: str, label_id: str) -> TrainingImage:
    image = get_image(store, space, image_id)
    if label_id not in image.label_ids:
        get_label(store, space, label_id)
        raise InvalidInput(f"image {image_id} does not have label {label_id}")
    # Removed concurrently by another request: the same end state.
    with contextlib.suppress(ConditionFailed):
        store.transact(
            [
                Update(
                    keys.image_key(space, image_id),
                    map_remove={"labels": [label_id]},
                    condition=Condition(map_has=("labels", label_id)),
                ),
                *_label_writes(space, image, label_id, adding=False),
            ]
        )
    return get_image(store, space, image_id)


def update_image(store: ItemStore, space: Space, image_id: str, changes: dict[str, Any]) -> TrainingImage:
    if "meta_data" in changes:
        check_meta_data(changes["meta_data"])
    try:
        item = store.update(Update(keys.image_key(space, image_id), set=changes, condition=Condition(exists=True)))
    except ConditionFailed:
        raise NotFound(f"Training image {image_id} not found") from None
    return image_from_item(item)


def delete_image(store: ItemStore, blobs: BlobStore, space: Space, image_id: str) -> None:
    image = get_image(store, space, image_id)
    writes: list[Put | Update | Delete] = [
        Delete(keys.image_key(space, image_id), Condition(exists=True)),
        Delete(keys.content_key(space, image.content_hash)),
    ]
    for label_id in image.label_ids:
        if store.get(keys.label_key(space, label_id)) is not None:
            writes.extend(_label_writes(space, image, label_id, adding=False))
    try:
        store.transact(writes)
    except ConditionFailed as failed:
        if failed.index == 0:
            raise NotFound(f"Training image {image_id} not found") from None
        raise Conflict("the image's labels changed while it was being deleted; try again") from None
    forget_image(store, space, image_id)
    _remove_blobs(blobs, image)


def _remove_blobs(blobs: BlobStore, image: TrainingImage) -> None:
    blobs.delete(image_blob(image))
    blobs.delete(thumb_blob(image))


@dataclass(frozen=True)
class ImageFilter:
    labels: tuple[str, ...] = ()  # the image has every one of these
    not_labels: tuple[str, ...] = ()  # the image has none of these
    test: bool | None = None

    def keep(self, item: Item) -> bool:
        have = item.get("labels") or {}
        if any(label_id not in have for label_id in self.labels):
            return False
        if any(label_id in have for label_id in self.not_labels):
            return False
        return self.test is None or bool(item.get("test_image", False)) == self.test

    @property
    def is_empty(self) -> bool:
        return not self.labels and not self.not_labels and self.test is None


def list_images(store: ItemStore, space: Space, request: PageRequest, flt: ImageFilter) -> Page:
    if flt.labels:
        # Walk the first label's memberships (newest image first) and fetch those images.
        first = flt.labels[0]
        anchor = get_label(store, space, first)
        for label_id in flt.labels[1:] + flt.not_labels:
            get_label(store, space, label_id)

        def walk_label(after: str | None, limit: int | None) -> Iterator[Item]:
            memberships = merged(
                store, keys.membership_lists(space, first), keys.membership_ord_prefix(first), after, limit
            )
            while True:
                batch = [m for _, m in zip(range(100), memberships, strict=False)]
                if not batch:
                    return
                images = store.batch_get([keys.image_key(space, str(m["image_id"])) for m in batch])
                by_id = {image["id"]: image for image in images}
                for membership in batch:
                    image = by_id.get(membership["image_id"])
                    if image is not None:
                        # Continue the listing from the membership's position, not the image's.
                        yield {**image, ORD: membership[ORD]}

        simple = len(flt.labels) == 1 and not flt.not_labels and flt.test is None
        count = anchor.images_count if simple else sum(1 for item in walk_label(None, None) if flt.keep(item))
        return paginate(walk_label, request, count, None if simple else flt.keep)

    for label_id in flt.not_labels:
        get_label(store, space, label_id)

    lists = keys.image_lists(space)

    def walk(after: str | None, limit: int | None) -> Iterator[Item]:
        return merged(store, lists, IMAGE_PREFIX, after, limit)

    if flt.is_empty:
        return paginate(walk, request, count_lists(store, lists, IMAGE_PREFIX))
    return paginate(walk, request, sum(1 for item in walk(None, None) if flt.keep(item)), flt.keep)


def image_ids_with_labels(store: ItemStore, space: Space, label_ids: list[str]) -> list[str]:
    """Every image that has any of ``label_ids`` (for batch updates by label)."""
    found: dict[str, None] = {}
    for label_id in label_ids:
        for membership in label_memberships(store, space, label_id):
            found[str(membership["image_id"])] = None
    return list(found)


#: Writes per wipe transaction (DynamoDB takes at most 100, each item at most once).
_WIPE_WRITES = 90
#: Memberships read per wipe step; the step then takes as many of their images as fit.
_WIPE_READ = 30
#: Steps in a row that may lose a race with other requests before the wipe gives up.
_WIPE_RETRIES = 5


def wipe_label(store: ItemStore, blobs: BlobStore, space: Space, label_id: str) -> int:
    """Delete the label and every training image that carries it (whatever other labels those
    images have, as Ximilar's ``label/{id}/wipe`` does); returns how many images went.

    Works in steps of one transaction each: a step deletes some images whole (item, content
    marker, their memberships in every label, the labels' counters), so a crash leaves each
    image either fully there or fully gone. The label goes last: until then it is still
    listed, and repeating the request finishes the job."""
    label = get_label(store, space, label_id)
    if label.negative_for_task:
        raise InvalidInput(
            f"label '{label.name}' is the negative label of task {label.negative_for_task}; "
            "it goes when the task is deleted"
        )
    deleted = 0
    failures = 0
    lagging = 0
    while True:
        memberships = present_memberships(store, space, label_id, _WIPE_READ)
        if not memberships:
            if not get_label(store, space, label_id).images_count or lagging >= LIST_LAG_ATTEMPTS:
                break
            wait_for_lists(lagging)  # the exact counter says images remain: the list lags
            lagging += 1
            continue
        try:
            deleted += _wipe_step(store, blobs, space, label_id, [str(m["image_id"]) for m in memberships])
            failures = 0
        except ConditionFailed:
            failures += 1  # an image or label changed meanwhile: read again and retry
            if failures >= _WIPE_RETRIES:
                raise Conflict("the label's images keep changing while it is being wiped; try again") from None
    delete_label(store, space, label_id)
    return deleted


def _wipe_step(store: ItemStore, blobs: BlobStore, space: Space, label_id: str, image_ids: list[str]) -> int:
    """One transaction: delete as many of ``image_ids`` as fit, whole. Returns how many."""
    found = {str(item["id"]): item for item in store.batch_get([keys.image_key(space, i) for i in image_ids])}
    writes: list[Put | Update | Delete] = []
    counts: dict[str, int] = {}
    taken: list[Item] = []
    for image_id in image_ids:
        item = found.get(image_id)
        if item is None:  # a membership whose image is gone: only the membership remains to remove
            step = [Delete(keys.membership_key(space, label_id, image_id))]
            step_labels = [label_id]
        else:
            step_labels = list(dict.fromkeys([label_id, *(item.get("labels") or {})]))
            step = [
                Delete(keys.image_key(space, image_id), Condition(exists=True)),
                Delete(keys.content_key(space, str(item["content_hash"]))),
                *(Delete(keys.membership_key(space, lid, image_id)) for lid in step_labels),
            ]
        new_counters = len(set(step_labels) - set(counts))
        if writes and len(writes) + len(step) + len(counts) + new_counters > _WIPE_WRITES:
            break
        if item is not None and len(step) + new_counters > _WIPE_WRITES:
            _shed_labels(store, space, image_id, keep=label_id)  # too many labels for one step
            return 0  # the next step reads the image again, now with one label
        writes.extend(step)
        for lid in step_labels:
            counts[lid] = counts.get(lid, 0) + 1
        if item is not None:
            taken.append(item)
    existing = {label.id for label in get_labels(store, space, sorted(counts))}
    writes.extend(
        Update(keys.label_key(space, lid), increment={"images_count": -n}, condition=Condition(exists=True))
        for lid, n in sorted(counts.items())
        if lid in existing
    )
    store.transact(writes)
    # Bytes after the records: a crash here leaves unreferenced files, never a record without them.
    for item in taken:
        forget_image(store, space, str(item["id"]))
        _remove_blobs(blobs, image_from_item(item))
    return len(taken)


def _shed_labels(store: ItemStore, space: Space, image_id: str, keep: str) -> None:
    """Take every label but ``keep`` off an image, one atomic change each."""
    for other in list(get_image(store, space, image_id).label_ids):
        if other != keep:
            with contextlib.suppress(NotFound, InvalidInput):
                remove_label_from_image(store, space, image_id, other)
