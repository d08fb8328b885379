"""Labels: categories (for multi_class tasks) and tags (for multi_label tasks)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from kestrel.domain.entities import Label, LabelType, default_workspace_id, new_id, now_iso
from kestrel.domain.errors import Conflict, InvalidInput, NotFound
from kestrel.ports.items import ORD, PK, SK, Condition, ConditionFailed, Delete, Item, ItemStore, Put, Update
from kestrel.store import keys
from kestrel.store.checks import check_names
from kestrel.store.keys import Space
from kestrel.store.paging import LIST_LAG_ATTEMPTS, Page, PageRequest, merged, paginate, wait_for_lists
from kestrel.store.workspaces import create_guard, guard_failed, workspace_gone

LABEL_PREFIX = "L#"
# Writes per transaction when a label is removed from its images: 2 per image + the counter.
_IMAGES_PER_CHUNK = 45


def label_from_item(item: Item) -> Label:
    return Label(
        id=item["id"],
        owner_id=item["owner_id"],
        workspace_id=item.get("workspace") or default_workspace_id(item["owner_id"]),
        name=item["name"],
        type=LabelType(item["type"]),
        description=item.get("description") or "",
        output_name=item.get("output_name") or item["name"],
        created=item["created"],
        images_count=int(item.get("images_count", 0)),
        task_ids=dict(item.get("tasks") or {}),
        negative_for_task=item.get("negative_for_task"),
    )


def get_label(store: ItemStore, space: Space, label_id: str) -> Label:
    item = store.get(keys.label_key(space, label_id))
    if item is None:
        raise NotFound(f"Label {label_id} not found")
    return label_from_item(item)


def get_labels(store: ItemStore, space: Space, label_ids: list[str]) -> list[Label]:
    """The labels that exist among ``label_ids``, in that order."""
    items = store.batch_get([keys.label_key(space, label_id) for label_id in label_ids])
    return [label_from_item(item) for item in items]


def labels_by_id(store: ItemStore, space: Space, label_ids: set[str]) -> dict[str, Label]:
    """The labels that exist among ``label_ids``, by id (one batch read)."""
    return {label.id: label for label in get_labels(store, space, sorted(label_ids))}


def label_item(label: Label, negative_for_task: str | None = None) -> Item:
    space = Space(label.owner_id, label.workspace_id)
    return {
        **keys.placement(space, keys.label_key(space, label.id), keys.label_ord(label.created, label.id)),
        "id": label.id,
        "owner_id": label.owner_id,
        "workspace": label.workspace_id,
        "name": label.name,
        "name_lc": label.name.lower(),
        "type": label.type.value,
        "description": label.description,
        "output_name": label.output_name,
        "created": label.created,
        "images_count": 0,
        "tasks": dict(label.task_ids),
        "negative_for_task": negative_for_task,
    }


def create_label(
    store: ItemStore, space: Space, name: str, label_type: LabelType, description: str, output_name: str
) -> Label:
    check_names({"name": name, "output_name": output_name})
    label = Label(
        id=new_id(),
        owner_id=space.owner_id,
        workspace_id=space.workspace_id,
        name=name,
        type=label_type,
        description=description,
        output_name=output_name or name,
        created=now_iso(),
    )
    guard = create_guard(space)
    if not guard:  # the default workspace: one plain write
        store.put(label_item(label), Condition(exists=False))
        return label
    writes = [Put(label_item(label), Condition(exists=False)), *guard]
    try:
        store.transact(writes)
    except ConditionFailed as failed:
        if guard_failed(space, writes, failed):
            raise workspace_gone(space) from None
        raise
    return label


def update_label(store: ItemStore, space: Space, label_id: str, changes: dict[str, Any]) -> Label:
    check_names(changes)
    fields = dict(changes)
    if "name" in fields:
        fields["name_lc"] = str(fields["name"]).lower()
    if "type" in fields:
        fields["type"] = LabelType(fields["type"]).value
        current = get_label(store, space, label_id)
        if fields["type"] != current.type.value and current.task_ids:
            raise InvalidInput(
                f"label '{current.name}' is attached to {len(current.task_ids)} task(s); detach it "
                "before changing its type"
            )
    if not fields:
        return get_label(store, space, label_id)
    try:
        item = store.update(Update(keys.label_key(space, label_id), set=fields, condition=Condition(exists=True)))
    except ConditionFailed:
        raise NotFound(f"Label {label_id} not found") from None
    return label_from_item(item)


def list_labels(
    store: ItemStore,
    space: Space,
    request: PageRequest,
    search: str | None,
    task_label_ids: list[str] | None,
) -> Page:
    """All labels, or only ``task_label_ids`` (a task's), optionally matching ``search``."""
    pk = keys.label_list(space)
    needle = search.lower() if search else None

    def keep(item: Item) -> bool:
        return needle is None or needle in str(item.get("name_lc", ""))

    if task_label_ids is not None:
        chosen = sorted(
            store.batch_get([keys.label_key(space, label_id) for label_id in task_label_ids]),
            key=lambda item: str(item[ORD]),
            reverse=True,
        )

        def walk_chosen(after: str | None, _limit: int | None) -> Iterator[Item]:
            return (item for item in chosen if after is None or str(item[ORD]) < after)

        return paginate(walk_chosen, request, sum(1 for item in chosen if keep(item)), keep)

    def walk(after: str | None, limit: int | None) -> Iterator[Item]:
        return store.query(pk, LABEL_PREFIX, index="ord", after=after, descending=True, limit=limit)

    if needle is None:
        return paginate(walk, request, store.count(pk, LABEL_PREFIX, index="ord"))
    return paginate(walk, request, sum(1 for item in walk(None, None) if keep(item)), keep)


def delete_label(store: ItemStore, space: Space, label_id: str, allow_negative: bool = False) -> None:
    """Take the label off every image and task, then delete it."""
    label = get_label(store, space, label_id)
    if label.negative_for_task and not allow_negative:
        raise InvalidInput(
            f"label '{label.name}' is the negative label of task {label.negative_for_task}; "
            "it goes when the task is deleted"
        )
    key = keys.label_key(space, label_id)
    for attempt in range(LIST_LAG_ATTEMPTS):
        _unlabel_listed(store, space, label_id)
        current = store.get(key)
        if current is None:
            return  # deleted meanwhile by another request
        counted = current.get("images_count")
        if not counted:
            writes = [
                Update(keys.task_key(space, task_id), map_remove={"labels": [label_id]})
                for task_id in label.task_ids
                if store.get(keys.task_key(space, task_id)) is not None
            ]
            try:
                # The counter is exact (it changes with every membership, by key): the label goes
                # only while it still counts no image.
                store.transact([*writes, Delete(key, Condition(equals={"images_count": counted}))])
                return
            except ConditionFailed as failed:
                if failed.index < len(writes):
                    raise
        wait_for_lists(attempt)  # images the lists do not show yet (DynamoDB's index lags)
    raise Conflict(f"label {label_id} keeps getting images while it is being deleted; try again")


def label_memberships(store: ItemStore, space: Space, label_id: str, limit: int | None = None) -> Iterator[Item]:
    """The label's memberships (from every shard of its list), at most ``limit``. The list may lag
    the writes on DynamoDB: whoever must act on exactly the current ones reads them by key."""
    lists = keys.membership_lists(space, label_id)
    found = merged(store, lists, keys.membership_ord_prefix(label_id), None, limit)
    return islice(found, limit) if limit is not None else found


def present_memberships(store: ItemStore, space: Space, label_id: str, limit: int) -> list[Item]:
    """Up to ``limit`` memberships of the label that exist right now (the list, checked by key)."""
    listed = list(label_memberships(store, space, label_id, limit))
    return store.batch_get([(str(item[PK]), str(item[SK])) for item in listed])


def _unlabel_listed(store: ItemStore, space: Space, label_id: str) -> None:
    """Take the label off every image its list shows, one transaction per chunk."""
    while memberships := present_memberships(store, space, label_id, _IMAGES_PER_CHUNK):
        writes: list[Update | Delete] = []
        for membership in memberships:
            image_id = str(membership["image_id"])
            writes.append(Update(keys.image_key(space, image_id), map_remove={"labels": [label_id]}))
            writes.append(Delete((membership[PK], membership[SK])))
        writes.append(Update(keys.label_key(space, label_id), increment={"images_count": -len(memberships)}))
        store.transact(writes)
