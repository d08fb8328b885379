"""store.lifecycle: a version's life Waiting -> Training -> Trained | Failed, by conditional writes
(a repeat changes nothing), the task's status following its newest version, the deploy decision
taken once, the mails owed, the training manifest, and which versions may be deleted."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from kestrel.adapters.sqlite_items import SqliteItemStore
from kestrel.domain.entities import LabelType, Task, TaskType, TrainingImage, TrainStatus
from kestrel.domain.errors import Conflict, InvalidInput, NotFound
from kestrel.domain.training_rules import split_order
from kestrel.ports.items import ItemStore, Update, Write
from kestrel.store import keys
from kestrel.store.images import add_label_to_image, get_image, image_blob
from kestrel.store.keys import Space
from kestrel.store.labels import get_label
from kestrel.store.lifecycle import (
    DEPLOY_PENDING,
    MAIL_FINISHED,
    MAIL_STARTED,
    OUTBOX,
    JobRef,
    build_manifest,
    complete_deploy,
    create_version,
    delete_model,
    find_job,
    job_name,
    mark_failed,
    mark_trained,
    mark_training,
    model_id_of_job,
    owed_mails,
    take_mail,
    trainable_labels,
)
from kestrel.store.tasks import attach_label, create_task, get_task, set_production_version, update_task
from kestrel.store.versions import get_model, get_model_by_version, model_items_of_task
from tests.unit.store.conftest import space_items

Upload = Callable[..., TrainingImage]
NewLabel = Callable[..., str]
TrainableTask = Callable[..., Task]
Racing = Callable[..., SqliteItemStore]


def _task_status(store: ItemStore, owner: Space, task_id: str) -> str | None:
    return get_task(store, owner, task_id).last_train_status


def _stored(store: ItemStore, owner: Space, model_id: str) -> dict[str, Any]:
    item = store.get(keys.model_key(owner, model_id))
    assert item is not None
    return item


def _new_ref(store: ItemStore, owner: Space, task: Task) -> JobRef:
    return find_job(store, create_version(store, owner, task.id).id)


# -- job names and pointers ------------------------------------------------------------------


def test_job_names_lead_back_to_their_model() -> None:
    assert job_name("abc") == "kestrel-abc"
    assert model_id_of_job(job_name("abc")) == "abc"
    assert model_id_of_job("someone-elses-job") is None


def test_find_job_gives_owner_task_and_model(store: ItemStore, owner: Space, trainable_task: TrainableTask) -> None:
    task = trainable_task()
    model = create_version(store, owner, task.id)
    assert find_job(store, model.id) == JobRef(space=owner, task_id=task.id, model_id=model.id)
    with pytest.raises(NotFound, match="no training job for model nope"):
        find_job(store, "nope")


# -- creating a version ----------------------------------------------------------------------


def test_create_version_writes_the_version_and_the_task_together(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    model = create_version(store, owner, task.id)
    assert (model.version, model.train_status) == (1, TrainStatus.WAITING)
    after = get_task(store, owner, task.id)
    assert (after.versions_created, after.last_train_status) == (1, "WAITING")
    pointer = store.get(keys.model_version_key(owner, task.id, 1))
    assert pointer is not None and pointer["model_id"] == model.id
    assert _stored(store, owner, model.id)[OUTBOX] == {}
    assert [create_version(store, owner, task.id).version for _ in range(2)] == [2, 3]
    assert get_task(store, owner, task.id).versions_created == 3


def test_create_version_refuses_a_task_that_cannot_train_and_writes_nothing(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task(images=19)
    with pytest.raises(InvalidInput) as refused:
        create_version(store, owner, task.id)
    assert refused.value.detail == (
        "cannot train yet: label 'first' has 19 images, 1 short of the 20 needed; "
        "label 'second' has 19 images, 1 short of the 20 needed"
    )
    after = get_task(store, owner, task.id)
    assert (after.versions_created, after.last_train_status) == (0, None)
    assert list(space_items(store, owner, "V#")) == []
    assert list(space_items(store, owner, "N#")) == []


def test_create_version_of_an_unknown_task_is_not_found(store: ItemStore, owner: Space) -> None:
    with pytest.raises(NotFound, match="Task nope not found"):
        create_version(store, owner, "nope")


def test_the_negative_label_is_not_a_label_the_model_learns(
    store: ItemStore, owner: Space, upload: Upload, new_label: NewLabel
) -> None:
    task = create_task(store, owner, "Scenes", "", TaskType.MULTI_LABEL)
    assert task.negative_label_id is not None
    sunny = new_label("sunny", LabelType.TAG)
    attach_label(store, owner, task.id, sunny)
    for _ in range(20):
        upload([sunny])
        upload([task.negative_label_id])
    task = get_task(store, owner, task.id)
    assert [label.name for label in trainable_labels(store, task)] == ["sunny"]
    # The negative label's 20 images do not make it a second label: one tag is not enough.
    with pytest.raises(InvalidInput) as refused:
        create_version(store, owner, task.id)
    assert refused.value.detail == (
        "cannot train yet: the task has 1 label; it needs at least 2 (attach labels with task/{id}/add-label/)"
    )
    rainy = new_label("rainy", LabelType.TAG)
    attach_label(store, owner, task.id, rainy)
    for _ in range(20):
        upload([rainy])
    task = get_task(store, owner, task.id)
    assert [label.name for label in trainable_labels(store, task)] == ["sunny", "rainy"]  # in attach order
    assert create_version(store, owner, task.id).version == 1


def test_a_multi_label_task_needs_no_negative_images(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task(TaskType.MULTI_LABEL)
    assert task.negative_label_id is not None
    assert get_label(store, owner, task.negative_label_id).images_count == 0
    assert create_version(store, owner, task.id).version == 1


def test_a_version_number_taken_concurrently_is_taken_again(
    store: ItemStore, owner: Space, trainable_task: TrainableTask, racing: Racing
) -> None:
    task = trainable_task()
    taken: list[int] = []
    racer = racing(lambda other: taken.append(create_version(other, owner, task.id).version))
    mine = create_version(racer, owner, task.id)
    assert (taken, mine.version) == ([1], 2)
    assert get_model_by_version(store, owner, task.id, 2) == mine
    assert get_task(store, owner, task.id).versions_created == 2


def test_losing_every_race_for_a_version_number_is_a_conflict(
    store: ItemStore, owner: Space, trainable_task: TrainableTask, racing: Racing
) -> None:
    task = trainable_task()
    competitors: list[int] = []
    racer = racing(lambda other: competitors.append(create_version(other, owner, task.id).version), times=1000)
    with pytest.raises(Conflict) as refused:
        create_version(racer, owner, task.id)
    assert refused.value.detail == f"too many train requests for task {task.id} at once; try again"
    # Every version the competitors took exists, numbered without gaps; none is half-made.
    created = get_task(store, owner, task.id).versions_created
    assert len(competitors) > 1
    assert competitors == list(range(1, created + 1))
    assert [int(item["version"]) for item in model_items_of_task(store, owner, task.id, created)] == list(
        range(1, created + 1)
    )


class _LandsThenTimesOut(SqliteItemStore):
    """The real store, whose first transaction is applied (or not) and then reported as a timeout."""

    def __init__(self, path: Path, lands: bool) -> None:
        super().__init__(path)
        self.lands = lands
        self.failed_once = False

    def transact(self, writes: Sequence[Write]) -> None:
        if not self.failed_once:
            self.failed_once = True
            if self.lands:
                super().transact(writes)
            raise TimeoutError("the transaction's answer never came")
        super().transact(writes)


def test_a_version_whose_write_landed_unseen_is_failed_not_left_waiting(
    store: SqliteItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    flaky = _LandsThenTimesOut(store.path, lands=True)
    try:
        with pytest.raises(TimeoutError):
            create_version(flaky, owner, task.id)
    finally:
        flaky.close()
    model = get_model_by_version(store, owner, task.id, 1)
    assert (model.train_status, model.failure_reason) == (TrainStatus.FAILED, "the train request could not be recorded")
    assert owed_mails(store, find_job(store, model.id)) == {}  # the HTTP answer tells the owner
    assert _task_status(store, owner, task.id) == "FAILED"


def test_a_version_whose_write_did_not_land_leaves_nothing(
    store: SqliteItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    flaky = _LandsThenTimesOut(store.path, lands=False)
    try:
        with pytest.raises(TimeoutError):
            create_version(flaky, owner, task.id)
    finally:
        flaky.close()
    after = get_task(store, owner, task.id)
    assert (after.versions_created, after.last_train_status) == (0, None)
    assert list(space_items(store, owner, "V#")) == []


# -- transitions -----------------------------------------------------------------------------


def test_waiting_training_trained_each_step_once(store: ItemStore, owner: Space, trainable_task: TrainableTask) -> None:
    task = trainable_task()
    ref = _new_ref(store, owner, task)

    assert mark_training(store, ref, images=40) is True
    training = get_model(store, owner, ref.model_id)
    assert training.train_status == TrainStatus.TRAINING
    assert training.started is not None
    assert _task_status(store, owner, task.id) == "IN_TRAINING"
    assert owed_mails(store, ref) == {MAIL_STARTED: {"images": 40}}
    assert mark_training(store, ref, images=99) is False  # a repeat changes nothing
    assert get_model(store, owner, ref.model_id) == training
    assert owed_mails(store, ref) == {MAIL_STARTED: {"images": 40}}

    assert mark_trained(store, ref, 0.875, {"f1": 0.8}) is True
    trained = get_model(store, owner, ref.model_id)
    assert (trained.train_status, trained.accuracy, trained.metrics) == (TrainStatus.TRAINED, 0.875, {"f1": 0.8})
    assert trained.trained is not None and trained.started == training.started
    assert _task_status(store, owner, task.id) == "TRAINED"
    assert set(owed_mails(store, ref)) == {MAIL_STARTED, MAIL_FINISHED}
    assert mark_trained(store, ref, 0.1, {}) is False
    assert get_model(store, owner, ref.model_id).accuracy == 0.875


def test_a_waiting_version_may_finish_directly(store: ItemStore, owner: Space, trainable_task: TrainableTask) -> None:
    task = trainable_task()
    ref = _new_ref(store, owner, task)
    assert mark_trained(store, ref, 0.5, {}) is True
    assert get_model(store, owner, ref.model_id).train_status == TrainStatus.TRAINED
    assert MAIL_STARTED not in owed_mails(store, ref)


def test_failing_keeps_the_reason_and_is_final(store: ItemStore, owner: Space, trainable_task: TrainableTask) -> None:
    task = trainable_task()
    ref = _new_ref(store, owner, task)
    mark_training(store, ref, images=40)
    assert mark_failed(store, ref, "out of memory " + "x" * 3000) is True
    failed = get_model(store, owner, ref.model_id)
    assert failed.train_status == TrainStatus.FAILED
    assert failed.failure_reason is not None and len(failed.failure_reason) == 2000
    assert failed.failure_reason.startswith("out of memory ")
    assert _task_status(store, owner, task.id) == "FAILED"
    assert MAIL_FINISHED in owed_mails(store, ref)
    # Nothing moves a Failed version any more.
    assert mark_failed(store, ref, "again") is False
    assert mark_training(store, ref, images=1) is False
    assert mark_trained(store, ref, 0.9, {}) is False
    assert get_model(store, owner, ref.model_id) == failed
    assert get_task(store, owner, task.id).production_version == -1


def test_a_trained_version_cannot_fail_afterwards(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    ref = _new_ref(store, owner, task)
    mark_trained(store, ref, 0.9, {})
    assert mark_failed(store, ref, "late failure event") is False
    model = get_model(store, owner, ref.model_id)
    assert (model.train_status, model.failure_reason) == (TrainStatus.TRAINED, None)
    assert _task_status(store, owner, task.id) == "TRAINED"


def test_failing_without_mail_owes_none(store: ItemStore, owner: Space, trainable_task: TrainableTask) -> None:
    task = trainable_task()
    ref = _new_ref(store, owner, task)
    assert mark_failed(store, ref, "could not queue", mail=False) is True
    assert owed_mails(store, ref) == {}


def test_the_task_shows_its_newest_version_only(store: ItemStore, owner: Space, trainable_task: TrainableTask) -> None:
    task = trainable_task()
    older, newer = _new_ref(store, owner, task), _new_ref(store, owner, task)
    mark_training(store, older, images=40)
    mark_trained(store, older, 0.9, {})
    assert _task_status(store, owner, task.id) == "WAITING"  # version 2's state
    mark_failed(store, newer, "boom")
    assert _task_status(store, owner, task.id) == "FAILED"
    mark_failed(store, older, "late event for version 1")  # a Trained version: no change anywhere
    assert _task_status(store, owner, task.id) == "FAILED"


def test_a_repeat_completes_the_task_status_the_first_delivery_missed(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    ref = _new_ref(store, owner, task)
    mark_training(store, ref, images=40)
    # As if the first delivery had stopped between the model's write and the task's.
    # (In the spelling Kestrel stored before it took Ximilar's: read as WAITING all the same.)
    store.update(Update(keys.task_key(owner, task.id), set={"last_train_status": "Waiting"}))
    assert mark_training(store, ref, images=40) is False
    assert _task_status(store, owner, task.id) == "IN_TRAINING"


def test_transitions_of_a_deleted_task_change_only_the_version(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    ref = _new_ref(store, owner, task)
    store.delete(keys.task_key(owner, task.id))
    assert mark_training(store, ref, images=40) is True
    assert mark_trained(store, ref, 0.9, {}) is True
    assert store.get(keys.task_key(owner, task.id)) is None  # not brought back by the status write
    assert DEPLOY_PENDING not in _stored(store, owner, ref.model_id)


def test_transitions_of_an_unknown_version_do_nothing(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    ghost = JobRef(space=owner, task_id=task.id, model_id="ghost")
    assert mark_training(store, ghost, images=1) is False
    assert mark_failed(store, ghost, "x") is False
    assert mark_trained(store, ghost, 0.5, {}) is False
    assert store.get(keys.model_key(owner, "ghost")) is None
    assert _task_status(store, owner, task.id) is None


# -- deploying -------------------------------------------------------------------------------


def _train(store: ItemStore, ref: JobRef) -> None:
    mark_training(store, ref, images=40)
    mark_trained(store, ref, 0.9, {})


def test_the_first_trained_version_is_deployed_and_later_ones_wait(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    first, second = _new_ref(store, owner, task), _new_ref(store, owner, task)
    _train(store, first)
    assert get_task(store, owner, task.id).production_version == 1
    assert DEPLOY_PENDING not in _stored(store, owner, first.model_id)
    _train(store, second)
    assert get_task(store, owner, task.id).production_version == 1  # no auto-deploy: the owner chooses


def test_auto_deploy_takes_each_newer_version_but_never_an_older_one(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    update_task(store, owner, task.id, {"auto_deploy": True})
    first, second, third = (_new_ref(store, owner, task) for _ in range(3))
    _train(store, first)
    assert get_task(store, owner, task.id).production_version == 1
    _train(store, third)
    assert get_task(store, owner, task.id).production_version == 3
    _train(store, second)  # finishing late: older than production
    assert get_task(store, owner, task.id).production_version == 3


def test_a_repeated_trained_event_does_not_undo_the_owners_choice(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    ref = _new_ref(store, owner, task)
    _train(store, ref)
    set_production_version(store, owner, task.id, -1)  # the owner undeploys it
    assert mark_trained(store, ref, 0.9, {}) is False
    complete_deploy(store, ref)
    assert get_task(store, owner, task.id).production_version == -1


def test_complete_deploy_finishes_a_deploy_the_first_delivery_missed(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    ref = _new_ref(store, owner, task)
    _train(store, ref)
    # As if the first delivery had stopped after the Trained write, before deploying.
    store.update(Update(keys.model_key(owner, ref.model_id), set={DEPLOY_PENDING: True}))
    store.update(Update(keys.task_key(owner, task.id), set={"production_version": -1}))
    assert mark_trained(store, ref, 0.9, {}) is False
    assert get_task(store, owner, task.id).production_version == 1
    assert DEPLOY_PENDING not in _stored(store, owner, ref.model_id)


# -- mails owed ------------------------------------------------------------------------------


def test_each_owed_mail_is_taken_by_one_caller_only(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    ref = _new_ref(store, owner, task)
    _train(store, ref)
    assert take_mail(store, ref, MAIL_STARTED) is True
    assert take_mail(store, ref, MAIL_STARTED) is False
    assert owed_mails(store, ref) == {MAIL_FINISHED: {}}
    assert take_mail(store, ref, MAIL_FINISHED) is True
    assert owed_mails(store, ref) == {}


def test_no_mail_is_owed_for_an_unknown_version(store: ItemStore, owner: Space) -> None:
    ghost = JobRef(space=owner, task_id="t", model_id="ghost")
    assert owed_mails(store, ghost) == {}
    assert take_mail(store, ghost, MAIL_FINISHED) is False
    assert store.get(keys.model_key(owner, "ghost")) is None


# -- the training manifest -------------------------------------------------------------------


def test_the_manifest_of_a_multi_class_task(
    store: ItemStore, owner: Space, upload: Upload, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    first, second = list(task.label_ids)
    ambiguous = upload([first, second])  # a category task needs exactly one of its labels
    upload()  # no label of the task: not a candidate at all
    ref = _new_ref(store, owner, task)

    manifest = build_manifest(store, ref)

    assert {k: manifest[k] for k in ("model_id", "task_id", "task_name", "owner_id", "version", "task_type")} == {
        "model_id": ref.model_id,
        "task_id": task.id,
        "task_name": task.name,
        "owner_id": owner.owner_id,
        "version": 1,
        "task_type": "multi_class",
    }
    assert manifest["labels"] == [{"id": first, "name": "first"}, {"id": second, "name": "second"}]
    assert manifest["skipped_images"] == [ambiguous.id]
    images = manifest["images"]
    assert len(images) == 40
    assert sum(image["labels"] == [first] for image in images) == 20
    assert sum(image["labels"] == [second] for image in images) == 20
    assert {image["split"] for image in images} <= {"train", "test"}
    for image in images:
        assert image["key"] == image_blob(get_image(store, owner, image["id"]))  # <id>.<its extension>
        assert image["key"].endswith(f"/{image['id']}.png")
        assert len(image["sha256"]) == 64
    # In content order, not id or upload order: the job sees the same photos in the same order.
    assert [image["sha256"] for image in images] == sorted(
        (image["sha256"] for image in images), key=lambda sha: split_order(sha)
    )


def test_the_manifest_of_a_multi_label_task_keeps_negatives_with_no_labels(
    store: ItemStore, owner: Space, upload: Upload, trainable_task: TrainableTask
) -> None:
    task = trainable_task(TaskType.MULTI_LABEL)
    assert task.negative_label_id is not None
    first, second = (label_id for label_id in task.label_ids if label_id != task.negative_label_id)
    negatives = [upload([task.negative_label_id]) for _ in range(3)]
    both = upload([first])
    add_label_to_image(store, owner, both.id, second)
    ref = _new_ref(store, owner, task)

    manifest = build_manifest(store, ref)

    assert [label["name"] for label in manifest["labels"]] == ["first", "second"]  # no negative label
    by_id = {image["id"]: image for image in manifest["images"]}
    assert len(by_id) == 20 + 20 + 3 + 1
    assert all(by_id[image.id]["labels"] == [] for image in negatives)
    assert by_id[both.id]["labels"] == sorted([first, second])
    assert manifest["skipped_images"] == []


# -- deleting a version ----------------------------------------------------------------------


@pytest.mark.parametrize("state", ["WAITING", "IN_TRAINING"])
def test_a_version_in_progress_cannot_be_deleted(
    store: ItemStore, owner: Space, trainable_task: TrainableTask, state: str
) -> None:
    task = trainable_task()
    ref = _new_ref(store, owner, task)
    if state == "IN_TRAINING":
        mark_training(store, ref, images=40)
    with pytest.raises(Conflict) as refused:
        delete_model(store, owner, ref.model_id)
    assert refused.value.detail == f"version 1 is {state}; wait until it ends"
    assert get_model(store, owner, ref.model_id).train_status == state


def test_the_production_version_cannot_be_deleted(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    ref = _new_ref(store, owner, task)
    _train(store, ref)
    with pytest.raises(Conflict) as refused:
        delete_model(store, owner, ref.model_id)
    assert refused.value.detail == (
        "version 1 is the task's production version; deploy another version "
        "(PATCH task/{id}/ with production_version) before deleting it"
    )
    assert get_model(store, owner, ref.model_id).train_status == TrainStatus.TRAINED


def test_finished_versions_not_deployed_are_deleted_with_their_pointer(
    store: ItemStore, owner: Space, trainable_task: TrainableTask
) -> None:
    task = trainable_task()
    deployed, failed, trained = (_new_ref(store, owner, task) for _ in range(3))
    _train(store, deployed)
    mark_failed(store, failed, "boom")
    _train(store, trained)
    for ref, version in ((failed, 2), (trained, 3)):
        assert delete_model(store, owner, ref.model_id).version == version
        with pytest.raises(NotFound):
            get_model(store, owner, ref.model_id)
        assert store.get(keys.model_version_key(owner, task.id, version)) is None
    assert get_model_by_version(store, owner, task.id, 1).id == deployed.model_id
    # Numbers are never reused: the next version is 4.
    assert create_version(store, owner, task.id).version == 4


def test_deleting_an_unknown_version_is_not_found(store: ItemStore, owner: Space) -> None:
    with pytest.raises(NotFound, match="Model nope not found"):
        delete_model(store, owner, "nope")
