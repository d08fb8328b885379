"""Model versions of a task: what training produced, and which one is deployed."""

from __future__ import annotations

from collections.abc import Iterator

from kestrel.domain.entities import Model, TrainStatus, default_workspace_id
from kestrel.domain.errors import NotFound
from kestrel.ports.items import SK, Item, ItemStore
from kestrel.store import keys
from kestrel.store.keys import Space
from kestrel.store.paging import Page, PageRequest, paginate
from kestrel.store.workspaces import spaces_of

MODEL_PREFIX = "V#"


def model_from_item(item: Item) -> Model:
    return Model(
        id=item["id"],
        owner_id=item["owner_id"],
        workspace_id=item.get("workspace") or default_workspace_id(item["owner_id"]),
        task_id=item["task_id"],
        task_name=item.get("task_name", ""),
        version=int(item["version"]),
        train_status=TrainStatus.parse(item["train_status"]),
        created=item["created"],
        accuracy=item.get("accuracy"),
        metrics=dict(item.get("metrics") or {}),
        trained=item.get("trained"),
        started=item.get("started"),
        failure_reason=item.get("failure_reason"),
        mail_status={str(kind): str(status) for kind, status in (item.get("mail_status") or {}).items()},
    )


def model_item(model: Model) -> Item:
    """The stored form of ``model`` (what ``model_from_item`` reads back); the lifecycle adds its
    own bookkeeping attributes (owed mails, a pending deploy) in its writes."""
    space = keys.space_of(model)
    return {
        **keys.placement(space, keys.model_key(space, model.id), keys.model_ord(model.task_id, model.version)),
        "id": model.id,
        "owner_id": model.owner_id,
        "workspace": keys.space_of(model).workspace_id,
        "task_id": model.task_id,
        "task_name": model.task_name,
        "version": model.version,
        "train_status": model.train_status.value,
        "created": model.created,
        "accuracy": model.accuracy,
        "metrics": dict(model.metrics),
        "trained": model.trained,
        "started": model.started,
        "failure_reason": model.failure_reason,
    }


def get_model(store: ItemStore, space: Space, model_id: str) -> Model:
    item = store.get(keys.model_key(space, model_id))
    if item is None:
        raise NotFound(f"Model {model_id} not found")
    return model_from_item(item)


def waiting_models(store: ItemStore) -> Iterator[Model]:
    """Every owner's versions still Waiting for their train request to be launched."""
    for owner in store.query(keys.OWNERS_PK):
        for space in spaces_of(store, str(owner[SK])):
            for item in store.query(keys.model_list(space), MODEL_PREFIX, index="ord"):
                if item.get("train_status") in (TrainStatus.WAITING.value, TrainStatus.WAITING.legacy):
                    yield model_from_item(item)


def get_model_by_version(store: ItemStore, space: Space, task_id: str, version: int) -> Model:
    pointer = store.get(keys.model_version_key(space, task_id, version))
    if pointer is None:
        raise NotFound(f"task {task_id} has no model version {version}")
    return get_model(store, space, str(pointer["model_id"]))


def model_items_of_task(store: ItemStore, space: Space, task_id: str, versions_created: int) -> list[Item]:
    """Every model of the task: versions 1..``versions_created`` read by key (exact, whatever the
    list shows yet), and the task's list (models stored before the task counted its versions)."""
    pointers = store.batch_get([keys.model_version_key(space, task_id, v) for v in range(1, versions_created + 1)])
    by_key = store.batch_get([keys.model_key(space, str(pointer["model_id"])) for pointer in pointers])
    listed = store.query(keys.model_list(space), f"{MODEL_PREFIX}{task_id}#", index="ord")
    found = {str(item["id"]): item for item in [*by_key, *listed]}
    return sorted(found.values(), key=lambda item: int(item["version"]))


def list_models(store: ItemStore, space: Space, request: PageRequest, task_id: str | None) -> Page:
    pk = keys.model_list(space)
    prefix = f"{MODEL_PREFIX}{task_id}#" if task_id else MODEL_PREFIX

    def walk(after: str | None, limit: int | None) -> Iterator[Item]:
        return store.query(pk, prefix, index="ord", after=after, descending=True, limit=limit)

    return paginate(walk, request, store.count(pk, prefix, index="ord"))
