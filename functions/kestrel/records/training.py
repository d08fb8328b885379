"""Model versions through their life: requested (Waiting) -> Training -> Trained | Failed.

Each step is a conditional write on the model's state, so a repeated request or a duplicated
completion event changes nothing the second time."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from kestrel.domain.entities import Model, Task, TaskType, TrainStatus, new_id, now_iso
from kestrel.domain.errors import NotFound
from kestrel.domain.training_rules import LabelCount, SplitImage, check_trainable, split
from kestrel.ports.items import ORD, PK, SK, Condition, ConditionFailed, ItemStore, Put, Update
from kestrel.records import keys
from kestrel.records.labels import get_labels
from kestrel.records.models import get_model, model_from_item
from kestrel.records.tasks import get_task

_DEPLOY_RETRIES = 10


def job_name(model_id: str) -> str:
    """SageMaker job names: Kestrel's start with ``kestrel-`` (the EventBridge rule filters on it)."""
    return f"kestrel-{model_id}"


def model_id_of_job(name: str) -> str | None:
    return name.removeprefix("kestrel-") if name.startswith("kestrel-") else None


def job_key(model_id: str) -> tuple[str, str]:
    """A global pointer from a model id to its owner: completion events carry only the job name."""
    return (f"JOB#{model_id}", "JOB")


@dataclass(frozen=True)
class JobRef:
    owner_id: str
    task_id: str
    model_id: str


def find_job(store: ItemStore, model_id: str) -> JobRef:
    item = store.get(job_key(model_id))
    if item is None:
        raise NotFound(f"no training job for model {model_id}")
    return JobRef(owner_id=str(item["owner_id"]), task_id=str(item["task_id"]), model_id=model_id)


def trainable_labels(store: ItemStore, task: Task) -> list[LabelCount]:
    """The labels a model learns (the negative label of a multi_label task is not one of them)."""
    labels = get_labels(store, task.owner_id, sorted(task.label_ids, key=lambda lid: task.label_ids[lid]))
    return [
        LabelCount(label_id=label.id, name=label.name, images=label.images_count)
        for label in labels
        if label.id != task.negative_label_id
    ]


def create_version(store: ItemStore, owner_id: str, task_id: str) -> Model:
    """Check the rules, then create model version n+1 in state Waiting (safe under concurrency)."""
    task = get_task(store, owner_id, task_id)
    check_trainable(trainable_labels(store, task))
    try:
        # The counter is the only thing two concurrent requests race for: each gets its own n.
        item = store.update(
            Update(
                keys.task_key(owner_id, task_id),
                increment={"versions_created": 1},
                set={"last_train_status": TrainStatus.WAITING.value},
                condition=Condition(exists=True),
            )
        )
    except ConditionFailed:
        raise NotFound(f"Task {task_id} not found") from None
    version = int(item["versions_created"])
    model = Model(
        id=new_id(),
        owner_id=owner_id,
        task_id=task_id,
        task_name=task.name,
        version=version,
        train_status=TrainStatus.WAITING,
        created=now_iso(),
    )
    pk, sk = keys.model_key(owner_id, model.id)
    version_pk, version_sk = keys.model_version_key(owner_id, task_id, version)
    job_pk, job_sk = job_key(model.id)
    store.transact(
        [
            Put(
                {
                    PK: pk,
                    SK: sk,
                    ORD: keys.model_ord(task_id, version),
                    "id": model.id,
                    "owner_id": owner_id,
                    "task_id": task_id,
                    "task_name": task.name,
                    "version": version,
                    "train_status": model.train_status.value,
                    "created": model.created,
                    "accuracy": None,
                    "metrics": {},
                },
                Condition(exists=False),
            ),
            Put({PK: version_pk, SK: version_sk, "model_id": model.id}, Condition(exists=False)),
            Put({PK: job_pk, SK: job_sk, "owner_id": owner_id, "task_id": task_id}, Condition(exists=False)),
        ]
    )
    return model


def _set_task_status(store: ItemStore, owner_id: str, task_id: str, status: TrainStatus, version: int) -> None:
    """The task shows the state of its newest version only: an older version finishing late,
    or the task having been deleted meanwhile, changes nothing."""
    with contextlib.suppress(ConditionFailed):
        store.update(
            Update(
                keys.task_key(owner_id, task_id),
                set={"last_train_status": status.value},
                condition=Condition(equals={"versions_created": version}),
            )
        )


def _transition(
    store: ItemStore, ref: JobRef, to: TrainStatus, fields: dict[str, Any], froms: list[TrainStatus]
) -> bool:
    """Move the model to ``to`` if it is in one of ``froms``; False if it was not (a repeat)."""
    for state in froms:
        try:
            item = store.update(
                Update(
                    keys.model_key(ref.owner_id, ref.model_id),
                    set={"train_status": to.value, **fields},
                    condition=Condition(equals={"train_status": state.value}),
                )
            )
        except ConditionFailed:
            continue
        _set_task_status(store, ref.owner_id, ref.task_id, to, int(item["version"]))
        return True
    return False


def mark_training(store: ItemStore, ref: JobRef) -> bool:
    return _transition(store, ref, TrainStatus.TRAINING, {"started": now_iso()}, [TrainStatus.WAITING])


def mark_failed(store: ItemStore, ref: JobRef, reason: str) -> bool:
    """Failed with ``reason``; the production version stays as it was."""
    return _transition(
        store,
        ref,
        TrainStatus.FAILED,
        {"failure_reason": reason[:2000], "trained": now_iso()},
        [TrainStatus.TRAINING, TrainStatus.WAITING],
    )


def mark_trained(store: ItemStore, ref: JobRef, accuracy: float, metrics: dict[str, Any]) -> bool:
    """Trained with its metrics, then deployed if the task wants it. False for a repeated event."""
    fields = {"accuracy": accuracy, "metrics": metrics, "trained": now_iso()}
    if not _transition(store, ref, TrainStatus.TRAINED, fields, [TrainStatus.TRAINING, TrainStatus.WAITING]):
        return False
    deploy_if_wanted(store, ref)
    return True


def deploy_if_wanted(store: ItemStore, ref: JobRef) -> None:
    """Make the version production when the task has none, or auto-deploys a newer one.

    A conditional write on the production version observed: a concurrent deploy makes it
    fail, and the decision is taken again on the fresh state (no lost, no double bumps)."""
    model = get_model(store, ref.owner_id, ref.model_id)
    for _ in range(_DEPLOY_RETRIES):
        try:
            task = get_task(store, ref.owner_id, ref.task_id)
        except NotFound:
            return
        current = task.production_version
        wanted = current == -1 or (task.auto_deploy and model.version > current)
        if not wanted:
            return
        try:
            store.update(
                Update(
                    keys.task_key(ref.owner_id, ref.task_id),
                    set={"production_version": model.version},
                    condition=Condition(equals={"production_version": current}),
                )
            )
            return
        except ConditionFailed:
            continue


def build_manifest(store: ItemStore, ref: JobRef) -> dict[str, Any]:
    """Everything the training job needs to know, as JSON: labels in output order, images, split."""
    task = get_task(store, ref.owner_id, ref.task_id)
    model = model_from_item(store.get(keys.model_key(ref.owner_id, ref.model_id)) or {})
    labels = trainable_labels(store, task)
    learnt = {label.label_id for label in labels}
    candidates: dict[str, tuple[str, ...]] = {}
    label_ids = [label.label_id for label in labels]
    if task.type == TaskType.MULTI_LABEL and task.negative_label_id:
        label_ids.append(task.negative_label_id)
    for label_id in label_ids:
        for membership in store.query(keys.owner_pk(ref.owner_id), keys.membership_ord_prefix(label_id)):
            candidates.setdefault(str(membership["image_id"]), ())
    items = store.batch_get([keys.image_key(ref.owner_id, image_id) for image_id in candidates])
    skipped: list[str] = []
    chosen: list[tuple[dict[str, Any], tuple[str, ...]]] = []
    for item in items:
        own = tuple(sorted(label_id for label_id in (item.get("labels") or {}) if label_id in learnt))
        if task.type == TaskType.MULTI_CLASS and len(own) != 1:
            skipped.append(str(item["id"]))  # a category task needs exactly one of its labels
            continue
        chosen.append((item, own))
    assignment = split([SplitImage(str(item["id"]), own, bool(item.get("test_image", False))) for item, own in chosen])
    return {
        "model_id": ref.model_id,
        "task_id": task.id,
        "task_name": task.name,
        "owner_id": ref.owner_id,
        "version": model.version,
        "task_type": task.type.value,
        "labels": [{"id": label.label_id, "name": label.name} for label in labels],
        "images": [
            {
                "id": str(item["id"]),
                "key": keys.image_blob(ref.owner_id, str(item["id"])),
                "sha256": str(item["content_hash"]),
                "labels": list(own),
                "split": assignment[str(item["id"])],
            }
            for item, own in chosen
        ],
        "skipped_images": skipped,
    }
