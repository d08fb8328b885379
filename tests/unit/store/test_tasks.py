"""store.tasks: creation (with the negative label of a multi_label task), changes, deployment,
listings, labels attached and detached, and deletion that cascades to versions and labels."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kestrel.adapters.sqlite_items import SqliteItemStore
from kestrel.domain.entities import LabelType, Task, TaskType, TrainingImage
from kestrel.domain.errors import InvalidInput, NotFound
from kestrel.ports.items import ItemStore
from kestrel.store import keys
from kestrel.store.images import add_label_to_image, get_image, remove_label_from_image
from kestrel.store.keys import Space
from kestrel.store.labels import delete_label, get_label
from kestrel.store.lifecycle import create_version, find_job, mark_trained, mark_training
from kestrel.store.paging import PageRequest
from kestrel.store.tasks import (
    attach_label,
    create_task,
    delete_task,
    detach_label,
    get_task,
    list_tasks,
    set_production_version,
    update_task,
)
from kestrel.store.versions import get_model, get_model_by_version
from tests.unit.store.conftest import space_items

NewLabel = Callable[..., str]
Upload = Callable[..., TrainingImage]
Racing = Callable[..., SqliteItemStore]
TrainableTask = Callable[..., Task]
ALL = PageRequest(page=1, page_size=100)


def _trained_version(store: ItemStore, owner: Space, task_id: str) -> int:
    model = create_version(store, owner, task_id)
    ref = find_job(store, model.id)
    mark_training(store, ref, images=40)
    mark_trained(store, ref, 0.9, {})
    return model.version


def test_a_multi_class_task_starts_with_nothing(store: ItemStore, owner: Space) -> None:
    task = create_task(store, owner, "Pets", "cats and dogs", TaskType.MULTI_CLASS)
    assert get_task(store, owner, task.id) == task
    assert (task.name, task.description, task.type) == ("Pets", "cats and dogs", TaskType.MULTI_CLASS)
    assert (task.production_version, task.last_train_status, task.auto_deploy) == (-1, None, False)
    assert (task.label_ids, task.versions_created, task.negative_label_id) == ({}, 0, None)


def test_a_multi_label_task_comes_with_its_negative_label(store: ItemStore, owner: Space) -> None:
    task = create_task(store, owner, "Scenes", "", TaskType.MULTI_LABEL)
    assert task.negative_label_id is not None
    assert get_task(store, owner, task.id) == task
    assert list(task.label_ids) == [task.negative_label_id]
    negative = get_label(store, owner, task.negative_label_id)
    assert (negative.name, negative.type, negative.output_name) == ("Scenes (negative)", LabelType.TAG, "negative")
    assert negative.negative_for_task == task.id
    assert list(negative.task_ids) == [task.id]


def test_tasks_are_private_to_their_owner(store: ItemStore, owner: Space, other_owner: Space) -> None:
    task = create_task(store, owner, "Pets", "", TaskType.MULTI_CLASS)
    with pytest.raises(NotFound, match=f"Task {task.id} not found"):
        get_task(store, other_owner, task.id)
    with pytest.raises(NotFound):
        update_task(store, other_owner, task.id, {"name": "mine now"})
    with pytest.raises(NotFound):
        delete_task(store, other_owner, task.id)
    assert get_task(store, owner, task.id).name == "Pets"


def test_update_task_renames_describes_and_toggles_auto_deploy(store: ItemStore, owner: Space) -> None:
    task = create_task(store, owner, "Pets", "", TaskType.MULTI_CLASS)
    updated = update_task(store, owner, task.id, {"name": "Animals", "description": "all", "auto_deploy": True})
    assert (updated.name, updated.description, updated.auto_deploy) == ("Animals", "all", True)
    assert get_task(store, owner, task.id) == updated
    assert update_task(store, owner, task.id, {}) == updated
    assert [item["name"] for item in list_tasks(store, owner, ALL, "ANIM").items] == ["Animals"]


def test_updating_an_unknown_task_is_not_found(store: ItemStore, owner: Space) -> None:
    with pytest.raises(NotFound, match="Task nope not found"):
        update_task(store, owner, "nope", {"name": "x"})


def test_a_task_without_labels_changes_type_gaining_a_negative_label(store: ItemStore, owner: Space) -> None:
    task = create_task(store, owner, "Pets", "", TaskType.MULTI_CLASS)
    retyped = update_task(store, owner, task.id, {"type": "multi_label"})
    assert retyped.type == TaskType.MULTI_LABEL
    assert retyped.negative_label_id is not None
    assert list(retyped.label_ids) == [retyped.negative_label_id]
    assert get_label(store, owner, retyped.negative_label_id).negative_for_task == task.id


def test_a_multi_label_task_changing_to_multi_class_loses_its_negative_label(store: ItemStore, owner: Space) -> None:
    task = create_task(store, owner, "Scenes", "", TaskType.MULTI_LABEL)
    assert task.negative_label_id is not None
    retyped = update_task(store, owner, task.id, {"type": "multi_class"})
    assert (retyped.type, retyped.negative_label_id, retyped.label_ids) == (TaskType.MULTI_CLASS, None, {})
    with pytest.raises(NotFound):
        get_label(store, owner, task.negative_label_id)


def test_setting_the_type_a_task_has_changes_nothing_else(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    task = create_task(store, owner, "Pets", "", TaskType.MULTI_CLASS)
    attach_label(store, owner, task.id, new_label("cat"))
    assert update_task(store, owner, task.id, {"type": "multi_class"}) == get_task(store, owner, task.id)


def test_a_task_with_labels_keeps_its_type(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    task = create_task(store, owner, "Pets", "", TaskType.MULTI_CLASS)
    attach_label(store, owner, task.id, new_label("cat"))
    attach_label(store, owner, task.id, new_label("dog"))
    with pytest.raises(InvalidInput) as refused:
        update_task(store, owner, task.id, {"type": "multi_label", "name": "renamed"})
    assert refused.value.detail == "the task has 2 label(s) of type 'category'; detach them before changing its type"
    unchanged = get_task(store, owner, task.id)
    assert (unchanged.type, unchanged.name) == (TaskType.MULTI_CLASS, "Pets")  # nothing half-written


def test_a_trained_task_keeps_its_type(store: ItemStore, owner: Space, trainable_task: TrainableTask) -> None:
    task = trainable_task()
    create_version(store, owner, task.id)
    for label_id in task.label_ids:
        detach_label(store, owner, task.id, label_id)
    with pytest.raises(InvalidInput, match="a task that has been trained cannot change its type; create a new task"):
        update_task(store, owner, task.id, {"type": "multi_label"})


def test_production_version_must_be_a_trained_version(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    with pytest.raises(NotFound, match=f"task {task.id} has no model version 1"):
        set_production_version(store, owner, task.id, 1)
    waiting = create_version(store, owner, task.id)
    with pytest.raises(InvalidInput) as refused:
        set_production_version(store, owner, task.id, waiting.version)
    assert refused.value.detail == "version 1 is WAITING; only a TRAINED version can be deployed"
    assert get_task(store, owner, task.id).production_version == -1


def test_a_trained_version_is_deployed_and_undeployed(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    first = _trained_version(store, owner, task.id)
    second = _trained_version(store, owner, task.id)
    assert get_task(store, owner, task.id).production_version == first  # the first is deployed on its own
    assert set_production_version(store, owner, task.id, second).production_version == second
    assert set_production_version(store, owner, task.id, -1).production_version == -1
    assert get_task(store, owner, task.id).production_version == -1


def test_deploying_on_an_unknown_task_is_not_found(store: ItemStore, owner: Space) -> None:
    with pytest.raises(NotFound, match="Task nope not found"):
        set_production_version(store, owner, "nope", -1)


def test_list_tasks_newest_first_with_search_and_pages(store: ItemStore, owner: Space, other_owner: Space) -> None:
    names = ["Cats", "Dogs", "Wild cats", "Birds", "CATERPILLARS"]
    for name in names:
        create_task(store, owner, name, "", TaskType.MULTI_CLASS)
    create_task(store, other_owner, "Other cats", "", TaskType.MULTI_CLASS)
    everything = list_tasks(store, owner, ALL, None)
    assert [item["name"] for item in everything.items] == list(reversed(names))
    assert everything.count == 5
    first = list_tasks(store, owner, PageRequest(page=1, page_size=2), "cat")
    assert ([item["name"] for item in first.items], first.count) == (["CATERPILLARS", "Wild cats"], 3)
    second = list_tasks(store, owner, PageRequest(page=2, page_size=2, after=first.next_after), "cat")
    assert [item["name"] for item in second.items] == ["Cats"]
    assert second.next_after is None
    with pytest.raises(NotFound, match="page 3 is past the end; there are 2 pages"):
        list_tasks(store, owner, PageRequest(page=3, page_size=2), "cat")


def test_attach_label_links_both_sides_once(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    task = create_task(store, owner, "Pets", "", TaskType.MULTI_CLASS)
    cat = new_label("cat")
    attached = attach_label(store, owner, task.id, cat)
    assert list(attached.label_ids) == [cat]
    assert list(get_label(store, owner, cat).task_ids) == [task.id]
    again = attach_label(store, owner, task.id, cat)  # attaching again changes nothing
    assert again == attached
    assert get_label(store, owner, cat).task_ids == {task.id: attached.label_ids[cat]}


def test_a_task_takes_only_labels_of_its_type(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    categories = create_task(store, owner, "Pets", "", TaskType.MULTI_CLASS)
    tags = create_task(store, owner, "Scenes", "", TaskType.MULTI_LABEL)
    with pytest.raises(InvalidInput) as refused:
        attach_label(store, owner, categories.id, new_label("sunny", LabelType.TAG))
    assert refused.value.detail == (
        "label 'sunny' is a tag label, but a multi_class task takes 'category' labels; "
        "create a label with type 'category'"
    )
    with pytest.raises(InvalidInput, match="but a multi_label task takes 'tag' labels"):
        attach_label(store, owner, tags.id, new_label("cat", LabelType.CATEGORY))
    assert get_task(store, owner, categories.id).label_ids == {}


def test_the_negative_label_of_one_task_cannot_join_another(store: ItemStore, owner: Space) -> None:
    first = create_task(store, owner, "Scenes", "", TaskType.MULTI_LABEL)
    second = create_task(store, owner, "Moods", "", TaskType.MULTI_LABEL)
    assert first.negative_label_id is not None
    with pytest.raises(InvalidInput) as refused:
        attach_label(store, owner, second.id, first.negative_label_id)
    assert refused.value.detail == (
        "label 'Scenes (negative)' is the negative label of another task; it cannot be attached"
    )


def test_attaching_unknown_things_is_not_found(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    task = create_task(store, owner, "Pets", "", TaskType.MULTI_CLASS)
    with pytest.raises(NotFound, match="Label nope not found"):
        attach_label(store, owner, task.id, "nope")
    with pytest.raises(NotFound, match="Task nope not found"):
        attach_label(store, owner, "nope", new_label("cat"))


def test_detach_label_unlinks_both_sides(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    task = create_task(store, owner, "Pets", "", TaskType.MULTI_CLASS)
    cat, dog = new_label("cat"), new_label("dog")
    attach_label(store, owner, task.id, cat)
    attach_label(store, owner, task.id, dog)
    detached = detach_label(store, owner, task.id, cat)
    assert list(detached.label_ids) == [dog]
    assert get_label(store, owner, cat).task_ids == {}
    assert list(get_label(store, owner, dog).task_ids) == [task.id]


def test_detaching_what_is_not_attached_is_refused(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    task = create_task(store, owner, "Pets", "", TaskType.MULTI_CLASS)
    cat = new_label("cat")
    with pytest.raises(InvalidInput) as refused:
        detach_label(store, owner, task.id, cat)
    assert refused.value.detail == f"label {cat} is not attached to task {task.id}"
    with pytest.raises(NotFound, match="Label nope not found"):
        detach_label(store, owner, task.id, "nope")


def test_the_negative_label_stays_with_its_task(store: ItemStore, owner: Space) -> None:
    task = create_task(store, owner, "Scenes", "", TaskType.MULTI_LABEL)
    assert task.negative_label_id is not None
    with pytest.raises(InvalidInput, match="the negative label stays with its multi_label task"):
        detach_label(store, owner, task.id, task.negative_label_id)
    assert get_task(store, owner, task.id).label_ids == task.label_ids


def test_delete_task_removes_its_versions_and_frees_its_labels(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    version = _trained_version(store, owner, task.id)
    model = get_model_by_version(store, owner, task.id, version)
    second = create_version(store, owner, task.id)

    assert sorted(delete_task(store, owner, task.id)) == sorted([model.id, second.id])

    with pytest.raises(NotFound):
        get_task(store, owner, task.id)
    for model_id in (model.id, second.id):
        with pytest.raises(NotFound):
            get_model(store, owner, model_id)
    assert store.get(keys.model_version_key(owner, task.id, 1)) is None
    assert store.get(keys.model_version_key(owner, task.id, 2)) is None
    for label_id in task.label_ids:  # the labels stay, with their images, free of the task
        label = get_label(store, owner, label_id)
        assert (label.task_ids, label.images_count) == ({}, 20)
    assert task.id not in [item["id"] for item in space_items(store, owner, "T#")]
    assert list(space_items(store, owner, "V#")) == []


def test_delete_task_deletes_its_negative_label(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    task = create_task(store, owner, "Scenes", "", TaskType.MULTI_LABEL)
    sunny = new_label("sunny", LabelType.TAG)
    attach_label(store, owner, task.id, sunny)
    assert task.negative_label_id is not None
    assert delete_task(store, owner, task.id) == []
    with pytest.raises(NotFound):
        get_label(store, owner, task.negative_label_id)
    assert get_label(store, owner, sunny).task_ids == {}


def test_deleting_an_unknown_task_is_not_found(store: ItemStore, owner: Space) -> None:
    with pytest.raises(NotFound, match="Task nope not found"):
        delete_task(store, owner, "nope")


def test_a_multi_label_task_whose_negative_label_is_on_images_keeps_its_type(
    store: ItemStore, owner: Space, upload: Upload
) -> None:
    task = create_task(store, owner, "Scenes", "", TaskType.MULTI_LABEL)
    assert task.negative_label_id is not None
    image = upload([task.negative_label_id])
    with pytest.raises(InvalidInput) as refused:
        update_task(store, owner, task.id, {"type": "multi_class"})
    assert refused.value.detail == (
        "the task's negative label is on 1 image(s); take it off them (or delete them) before changing the task's type"
    )
    assert get_task(store, owner, task.id) == task
    assert get_image(store, owner, image.id).label_ids.keys() == {task.negative_label_id}
    # Once no image carries it, the type changes and the label goes, leaving nothing behind.
    remove_label_from_image(store, owner, image.id, task.negative_label_id)
    assert update_task(store, owner, task.id, {"type": "multi_class"}).negative_label_id is None
    with pytest.raises(NotFound):
        get_label(store, owner, task.negative_label_id)
    assert get_image(store, owner, image.id).label_ids == {}
    assert list(space_items(store, owner, keys.membership_ord_prefix(task.negative_label_id))) == []


def test_a_negative_label_put_on_an_image_meanwhile_stops_the_type_change(
    store: ItemStore, owner: Space, upload: Upload, racing: Racing
) -> None:
    task = create_task(store, owner, "Scenes", "", TaskType.MULTI_LABEL)
    negative = task.negative_label_id
    assert negative is not None
    image = upload()
    racer = racing(lambda other: add_label_to_image(other, owner, image.id, negative))
    with pytest.raises(InvalidInput, match="the task's negative label was put on images meanwhile; take it off"):
        update_task(racer, owner, task.id, {"type": "multi_class"})
    assert get_task(store, owner, task.id) == task
    assert get_label(store, owner, negative).images_count == 1
    assert list(get_image(store, owner, image.id).label_ids) == [negative]


def test_delete_task_with_more_versions_than_one_transaction_takes(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    # 2 writes per version: 50 versions need two transactions (DynamoDB takes 100 writes at most).
    model_ids = [create_version(store, owner, task.id).id for _ in range(50)]
    assert sorted(delete_task(store, owner, task.id)) == sorted(model_ids)
    assert list(space_items(store, owner, "V#")) == []
    assert list(space_items(store, owner, "N#")) == []
    with pytest.raises(NotFound):
        get_task(store, owner, task.id)
    assert all(get_label(store, owner, label_id).task_ids == {} for label_id in task.label_ids)


def test_a_label_attached_concurrently_is_attached_once(
    store: ItemStore, owner: Space, new_label: NewLabel, racing: Racing
) -> None:
    task = create_task(store, owner, "Pets", "", TaskType.MULTI_CLASS)
    cat = new_label("cat")
    racer = racing(lambda other: attach_label(other, owner, task.id, cat))
    attached = attach_label(racer, owner, task.id, cat)  # the end state asked for: no error
    assert list(attached.label_ids) == [cat]
    assert get_label(store, owner, cat).task_ids == {task.id: attached.label_ids[cat]}


def test_a_label_deleted_while_being_attached_is_not_found(
    store: ItemStore, owner: Space, new_label: NewLabel, racing: Racing
) -> None:
    task = create_task(store, owner, "Pets", "", TaskType.MULTI_CLASS)
    cat = new_label("cat")
    racer = racing(lambda other: delete_label(other, owner, cat))
    with pytest.raises(NotFound, match=f"Label {cat} not found"):
        attach_label(racer, owner, task.id, cat)
    assert get_task(store, owner, task.id).label_ids == {}


def test_a_label_detached_concurrently_is_detached_once(
    store: ItemStore, owner: Space, new_label: NewLabel, racing: Racing
) -> None:
    task = create_task(store, owner, "Pets", "", TaskType.MULTI_CLASS)
    cat, dog = new_label("cat"), new_label("dog")
    attach_label(store, owner, task.id, cat)
    attach_label(store, owner, task.id, dog)
    racer = racing(lambda other: detach_label(other, owner, task.id, cat))
    assert list(detach_label(racer, owner, task.id, cat).label_ids) == [dog]
    assert get_label(store, owner, cat).task_ids == {}
