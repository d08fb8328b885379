"""store.versions: reading model versions by id and by number, the Waiting ones, listings."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kestrel.domain.entities import Task, TrainStatus
from kestrel.domain.errors import NotFound
from kestrel.ports.items import ItemStore
from kestrel.store.keys import Space
from kestrel.store.lifecycle import create_version, find_job, mark_failed, mark_trained, mark_training
from kestrel.store.paging import PageRequest
from kestrel.store.versions import (
    get_model,
    get_model_by_version,
    list_models,
    model_from_item,
    model_items_of_task,
    waiting_models,
)

TrainableTask = Callable[..., Task]
ALL = PageRequest(page=1, page_size=100)


def test_a_new_version_reads_back_by_id_and_by_number(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    model = create_version(store, owner, task.id)
    assert get_model(store, owner, model.id) == model
    assert get_model_by_version(store, owner, task.id, 1) == model
    assert (model.task_id, model.task_name, model.version, model.train_status) == (
        task.id,
        task.name,
        1,
        TrainStatus.WAITING,
    )
    assert (model.accuracy, model.metrics, model.trained, model.started, model.failure_reason) == (
        None,
        {},
        None,
        None,
        None,
    )


def test_unknown_versions_are_not_found(
    store: ItemStore, owner: Space, other_owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    model = create_version(store, owner, task.id)
    with pytest.raises(NotFound, match="Model nope not found"):
        get_model(store, owner, "nope")
    with pytest.raises(NotFound, match=f"Model {model.id} not found"):
        get_model(store, other_owner, model.id)
    with pytest.raises(NotFound, match=f"task {task.id} has no model version 2"):
        get_model_by_version(store, owner, task.id, 2)


def test_model_from_item_reads_every_field() -> None:
    item = {
        "id": "m",
        "owner_id": "o",
        "task_id": "t",
        "task_name": "pets",
        "version": "3",
        "train_status": "Trained",
        "created": "c",
        "accuracy": 0.75,
        "metrics": {"f1": 0.7},
        "trained": "d",
        "started": "s",
        "failure_reason": None,
    }
    model = model_from_item(item)
    assert (model.version, model.train_status, model.accuracy, model.metrics) == (
        3,
        TrainStatus.TRAINED,
        0.75,
        {"f1": 0.7},
    )
    assert (model.trained, model.started, model.task_name) == ("d", "s", "pets")
    minimal = model_from_item({k: item[k] for k in ("id", "owner_id", "task_id", "version", "train_status", "created")})
    assert (minimal.task_name, minimal.metrics, minimal.accuracy) == ("", {}, None)


def test_waiting_models_lists_every_owners_waiting_versions(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    waiting = create_version(store, owner, task.id)
    training = create_version(store, owner, task.id)
    mark_training(store, find_job(store, training.id), images=40)
    failed = create_version(store, owner, task.id)
    mark_failed(store, find_job(store, failed.id), "boom")
    still_waiting = create_version(store, owner, task.id)
    assert sorted(model.id for model in waiting_models(store)) == sorted([waiting.id, still_waiting.id])


def test_models_of_a_task_and_listings_newest_first(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    pets, other = trainable_task(), trainable_task()
    pet_models = [create_version(store, owner, pets.id) for _ in range(3)]
    other_model = create_version(store, owner, other.id)
    ref = find_job(store, pet_models[0].id)
    mark_training(store, ref, images=40)
    mark_trained(store, ref, 0.8, {})

    assert [item["version"] for item in model_items_of_task(store, owner, pets.id, 3)] == [1, 2, 3]
    assert [item["version"] for item in model_items_of_task(store, owner, pets.id, 0)] == [1, 2, 3]  # the list
    listed = list_models(store, owner, ALL, pets.id)
    assert [item["id"] for item in listed.items] == [model.id for model in reversed(pet_models)]
    assert listed.count == 3
    assert list_models(store, owner, ALL, None).count == 4
    assert [item["id"] for item in list_models(store, owner, ALL, other.id).items] == [other_model.id]
    paged = list_models(store, owner, PageRequest(page=1, page_size=2), pets.id)
    rest = list_models(store, owner, PageRequest(page=2, page_size=2, after=paged.next_after), pets.id)
    assert [item["version"] for item in paged.items + rest.items] == [3, 2, 1]


def test_a_task_without_versions_lists_none(store: ItemStore, owner: Space, trainable_task: TrainableTask) -> None:
    task = trainable_task()
    page = list_models(store, owner, ALL, task.id)
    assert (page.items, page.count, page.next_after) == ([], 0, None)
    assert model_items_of_task(store, owner, task.id, 0) == []
