"""Tasks and which labels they have."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from kestrel.domain.entities import (
    LABEL_TYPE_FOR_TASK,
    Label,
    LabelType,
    Task,
    TaskType,
    TrainStatus,
    default_workspace_id,
    new_id,
    now_iso,
)
from kestrel.domain.errors import InvalidInput, NotFound
from kestrel.ports.items import PK, SK, Condition, ConditionFailed, Delete, Item, ItemStore, Put, Update
from kestrel.store import keys
from kestrel.store.checks import check_names
from kestrel.store.keys import Space
from kestrel.store.labels import delete_label, get_label, label_item
from kestrel.store.paging import Page, PageRequest, paginate
from kestrel.store.review_entries import forget_task
from kestrel.store.versions import get_model_by_version, model_items_of_task
from kestrel.store.workspaces import create_guard, guard_failed, workspace_gone

TASK_PREFIX = "T#"


def task_from_item(item: Item) -> Task:
    return Task(
        id=item["id"],
        owner_id=item["owner_id"],
        workspace_id=item.get("workspace") or default_workspace_id(item["owner_id"]),
        name=item["name"],
        description=item.get("description") or "",
        type=TaskType(item["type"]),
        created=item["created"],
        production_version=int(item.get("production_version", -1)),
        last_train_status=TrainStatus.parse(item["last_train_status"]) if item.get("last_train_status") else None,
        auto_deploy=bool(item.get("auto_deploy", False)),
        label_ids=dict(item.get("labels") or {}),
        versions_created=int(item.get("versions_created", 0)),
        negative_label_id=item.get("negative_label_id"),
    )


def task_item(task: Task) -> Item:
    """The stored form of ``task`` (what ``task_from_item`` reads back)."""
    space = keys.space_of(task)
    return {
        **keys.placement(space, keys.task_key(space, task.id), keys.task_ord(task.created, task.id)),
        "id": task.id,
        "owner_id": task.owner_id,
        "workspace": keys.space_of(task).workspace_id,
        "name": task.name,
        "name_lc": task.name.lower(),
        "description": task.description,
        "type": task.type.value,
        "created": task.created,
        "production_version": task.production_version,
        "last_train_status": task.last_train_status.value if task.last_train_status else None,
        "auto_deploy": task.auto_deploy,
        "labels": dict(task.label_ids),
        "negative_label_id": task.negative_label_id,
        "versions_created": task.versions_created,
    }


def get_task(store: ItemStore, space: Space, task_id: str) -> Task:
    item = store.get(keys.task_key(space, task_id))
    if item is None:
        raise NotFound(f"Task {task_id} not found")
    return task_from_item(item)


def _negative_label(space: Space, task: Task, when: str) -> Label:
    return Label(
        id=new_id(),
        owner_id=space.owner_id,
        workspace_id=space.workspace_id,
        name=f"{task.name} (negative)",
        type=LabelType.TAG,
        description="images that carry none of this task's tags",
        output_name="negative",
        created=when,
        task_ids={task.id: when},
        negative_for_task=task.id,
    )


def create_task(store: ItemStore, space: Space, name: str, description: str, task_type: TaskType) -> Task:
    """A new task; a multi_label task gets its negative label with it (as Ximilar's do)."""
    check_names({"name": name})
    when = now_iso()
    task = Task(
        id=new_id(),
        owner_id=space.owner_id,
        name=name,
        description=description,
        type=task_type,
        created=when,
        workspace_id=space.workspace_id,
    )
    writes: list[Put | Update | Delete] = []
    if task_type == TaskType.MULTI_LABEL:
        negative = _negative_label(space, task, when)
        task.negative_label_id = negative.id
        task.label_ids = {negative.id: when}
        writes.append(Put(label_item(negative, negative_for_task=task.id), Condition(exists=False)))
    all_writes = [Put(task_item(task), Condition(exists=False)), *writes, *create_guard(space)]
    try:
        store.transact(all_writes)
    except ConditionFailed as failed:
        if guard_failed(space, all_writes, failed):
            raise workspace_gone(space) from None
        raise
    return task


def update_task(store: ItemStore, space: Space, task_id: str, changes: dict[str, Any]) -> Task:
    """Rename, describe, toggle auto-deploy, or change the type of a task without labels."""
    check_names(changes)
    current = get_task(store, space, task_id)
    fields = dict(changes)
    writes: list[Put | Update | Delete] = []
    if "name" in fields:
        fields["name_lc"] = str(fields["name"]).lower()
    if "type" in fields:
        new_type = TaskType(fields["type"])
        fields["type"] = new_type.value
        if new_type != current.type:
            writes = _retype_writes(store, current, new_type, fields)
    if not fields:
        return current
    try:
        store.transact([Update(keys.task_key(space, task_id), set=fields, condition=Condition(exists=True)), *writes])
    except ConditionFailed as failed:
        if failed.index == 0:
            raise NotFound(f"Task {task_id} not found") from None
        raise _negative_label_in_use("was put on images meanwhile") from None
    return get_task(store, space, task_id)


def _negative_label_in_use(how: str) -> InvalidInput:
    # Deleting it would leave its images carrying a label that no longer exists.
    return InvalidInput(
        f"the task's negative label {how}; take it off them (or delete them) before changing the task's type"
    )


def _retype_writes(
    store: ItemStore, task: Task, new_type: TaskType, fields: dict[str, Any]
) -> list[Put | Update | Delete]:
    """The writes that give or take the negative label when a task changes type."""
    others = [label_id for label_id in task.label_ids if label_id != task.negative_label_id]
    if others:
        raise InvalidInput(
            f"the task has {len(others)} label(s) of type '{LABEL_TYPE_FOR_TASK[task.type].value}'; "
            "detach them before changing its type"
        )
    if task.versions_created:
        raise InvalidInput("a task that has been trained cannot change its type; create a new task")
    if new_type == TaskType.MULTI_LABEL:
        when = now_iso()
        negative = _negative_label(Space(task.owner_id, task.workspace_id), task, when)
        fields["negative_label_id"] = negative.id
        fields["labels"] = {negative.id: when}
        return [Put(label_item(negative, negative_for_task=task.id), Condition(exists=False))]
    fields["negative_label_id"] = None
    fields["labels"] = {}
    if task.negative_label_id is None:
        return []
    negative_key = keys.label_key(Space(task.owner_id, task.workspace_id), task.negative_label_id)
    negative_item = store.get(negative_key)
    if negative_item is None:
        return []
    if int(negative_item.get("images_count", 0)):
        raise _negative_label_in_use(f"is on {int(negative_item['images_count'])} image(s)")
    return [Delete(negative_key, Condition(equals={"images_count": 0}))]


def set_production_version(store: ItemStore, space: Space, task_id: str, version: int) -> Task:
    """Deploy ``version``: it must be a trained model of this task; -1 undeploys."""

    if version != -1:
        model = get_model_by_version(store, space, task_id, version)
        if model.train_status != TrainStatus.TRAINED:
            raise InvalidInput(
                f"version {version} is {model.train_status.value}; only a TRAINED version can be deployed"
            )
    try:
        item = store.update(
            Update(
                keys.task_key(space, task_id),
                set={"production_version": version},
                condition=Condition(exists=True),
            )
        )
    except ConditionFailed:
        raise NotFound(f"Task {task_id} not found") from None
    return task_from_item(item)


def list_tasks(store: ItemStore, space: Space, request: PageRequest, search: str | None) -> Page:
    pk = keys.task_list(space)

    def walk(after: str | None, limit: int | None) -> Iterator[Item]:
        return store.query(pk, TASK_PREFIX, index="ord", after=after, descending=True, limit=limit)

    if search:
        needle = search.lower()

        def keep(item: Item) -> bool:
            return needle in str(item.get("name_lc", ""))

        count = sum(1 for item in walk(None, None) if keep(item))
        return paginate(walk, request, count, keep)
    return paginate(walk, request, store.count(pk, TASK_PREFIX, index="ord"))


def attach_label(store: ItemStore, space: Space, task_id: str, label_id: str) -> Task:
    """Add a label to a task; attaching it again changes nothing."""
    task = get_task(store, space, task_id)
    label = get_label(store, space, label_id)
    _check_label_fits(task, label)
    if label_id in task.label_ids:
        return task
    when = now_iso()
    try:
        store.transact(
            [
                Update(
                    keys.task_key(space, task_id),
                    map_set={"labels": {label_id: when}},
                    condition=Condition(map_lacks=("labels", label_id)),
                ),
                Update(
                    keys.label_key(space, label_id),
                    map_set={"tasks": {task_id: when}},
                    condition=Condition(exists=True),
                ),
            ]
        )
    except ConditionFailed as failed:
        if failed.index == 1:
            raise NotFound(f"Label {label_id} not found") from None
        # index 0: attached concurrently by another request; the end state is what was asked.
    return get_task(store, space, task_id)


def detach_label(store: ItemStore, space: Space, task_id: str, label_id: str) -> Task:
    task = get_task(store, space, task_id)
    if label_id == task.negative_label_id:
        raise InvalidInput("the negative label stays with its multi_label task; it cannot be detached")
    if label_id not in task.label_ids:
        get_label(store, space, label_id)  # 404 for an unknown label, else a clear 400
        raise InvalidInput(f"label {label_id} is not attached to task {task_id}")
    # Detached concurrently by another request: the same end state.
    with contextlib.suppress(ConditionFailed):
        store.transact(
            [
                Update(
                    keys.task_key(space, task_id),
                    map_remove={"labels": [label_id]},
                    condition=Condition(map_has=("labels", label_id)),
                ),
                Update(keys.label_key(space, label_id), map_remove={"tasks": [task_id]}, upsert=False),
            ]
        )
    return get_task(store, space, task_id)


def _check_label_fits(task: Task, label: Label) -> None:
    if label.negative_for_task and label.negative_for_task != task.id:
        raise InvalidInput(f"label '{label.name}' is the negative label of another task; it cannot be attached")
    wanted = LABEL_TYPE_FOR_TASK[task.type]
    if label.type != wanted:
        raise InvalidInput(
            f"label '{label.name}' is a {label.type.value} label, but a {task.type.value} task takes "
            f"'{wanted.value}' labels; create a label with type '{wanted.value}'"
        )


def delete_task(store: ItemStore, space: Space, task_id: str) -> list[str]:
    """Delete the task and its models; returns the model ids so their files can be removed."""

    task = get_task(store, space, task_id)
    models = model_items_of_task(store, space, task_id, task.versions_created)
    writes: list[Put | Update | Delete] = [
        Update(keys.label_key(space, label_id), map_remove={"tasks": [task_id]})
        for label_id in task.label_ids
        if store.get(keys.label_key(space, label_id)) is not None
    ]
    for model in models:
        writes.append(Delete((model[PK], model[SK])))
        writes.append(Delete(keys.model_version_key(space, task_id, int(model["version"]))))
    # The task item goes last, in the final chunk: until then the task is still whole and visible.
    chunks = [writes[i : i + 90] for i in range(0, len(writes), 90)] or [[]]
    for chunk in chunks[:-1]:
        store.transact(chunk)
    store.transact([*chunks[-1], Delete(keys.task_key(space, task_id))])
    forget_task(store, space, task_id)
    if task.negative_label_id:
        delete_label(store, space, task.negative_label_id, allow_negative=True)
    return [str(model["id"]) for model in models]
