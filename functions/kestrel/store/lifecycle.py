"""Model versions through their life: requested (Waiting) -> Training -> Trained | Failed.

Each step is a conditional write on the model's state, so a repeated request or a duplicated
completion event changes nothing the second time."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from kestrel.domain.entities import Model, Task, TaskType, TrainStatus, default_workspace_id, new_id, now_iso
from kestrel.domain.errors import Conflict, NotFound
from kestrel.domain.training_rules import LabelCount, SplitImage, check_trainable, split, split_order
from kestrel.ports.items import PK, SK, Condition, ConditionFailed, Delete, Item, ItemStore, Put, Update, Write
from kestrel.store import keys
from kestrel.store.images import image_blob, image_from_item
from kestrel.store.keys import Space
from kestrel.store.labels import get_labels, label_memberships
from kestrel.store.tasks import get_task
from kestrel.store.versions import get_model, model_from_item, model_item

_DEPLOY_RETRIES = 10
_CREATE_RETRIES = 20  # a request loses the race for version n+1 to each concurrent one


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
    space: Space
    task_id: str
    model_id: str

    @property
    def owner_id(self) -> str:
        return self.space.owner_id


def find_job(store: ItemStore, model_id: str) -> JobRef:
    item = store.get(job_key(model_id))
    if item is None:
        raise NotFound(f"no training job for model {model_id}")
    # Jobs recorded before workspaces existed carry no workspace: theirs is the default one.
    owner_id = str(item["owner_id"])
    space = Space(owner_id, str(item.get("workspace") or default_workspace_id(owner_id)))
    return JobRef(space=space, task_id=str(item["task_id"]), model_id=model_id)


def trainable_labels(store: ItemStore, task: Task) -> list[LabelCount]:
    """The labels a model learns (the negative label of a multi_label task is not one of them)."""
    labels = get_labels(
        store, Space(task.owner_id, task.workspace_id), sorted(task.label_ids, key=lambda lid: task.label_ids[lid])
    )
    return [
        LabelCount(label_id=label.id, name=label.name, images=label.images_count)
        for label in labels
        if label.id != task.negative_label_id
    ]


def create_version(store: ItemStore, space: Space, task_id: str) -> Model:
    """Check the rules, then create model version n+1 in state Waiting (safe under concurrency).

    The task's counter and status and the version's items are written in one transaction, so a
    server killed midway leaves all of them or none (never a task Waiting for a version that does
    not exist). A concurrent request that took n+1 first makes it fail; it is tried again."""
    for _ in range(_CREATE_RETRIES):
        task = get_task(store, space, task_id)
        check_trainable(trainable_labels(store, task))
        version = task.versions_created + 1
        model = Model(
            id=new_id(),
            owner_id=space.owner_id,
            workspace_id=space.workspace_id,
            task_id=task_id,
            task_name=task.name,
            version=version,
            train_status=TrainStatus.WAITING,
            created=now_iso(),
        )
        version_pk, version_sk = keys.model_version_key(space, task_id, version)
        job_pk, job_sk = job_key(model.id)
        writes: list[Write] = [
            Update(
                keys.task_key(space, task_id),
                set={"versions_created": version, "last_train_status": TrainStatus.WAITING.value},
                condition=Condition(equals={"versions_created": task.versions_created}),
            ),
            Put({**model_item(model), OUTBOX: {}, MAIL_STATUS: {}}, Condition(exists=False)),
            Put({PK: version_pk, SK: version_sk, "model_id": model.id}, Condition(exists=False)),
            Put(
                {
                    PK: job_pk,
                    SK: job_sk,
                    "owner_id": space.owner_id,
                    "workspace": space.workspace_id,
                    "task_id": task_id,
                },
                Condition(exists=False),
            ),
        ]
        try:
            store.transact(writes)
        except ConditionFailed as failed:
            if failed.index == 0:
                continue  # another request took version n+1 (or the task is gone: get_task says so)
            raise
        except Exception:
            # After a timeout the transaction may have landed after all: then no train request
            # will be queued for version n+1, and it must not stay Waiting. If it did not land,
            # nothing changed (the task still shows what it showed).
            ref = JobRef(space=space, task_id=task_id, model_id=model.id)
            mark_failed(store, ref, "the train request could not be recorded", mail=False)
            raise
        return model
    raise Conflict(f"too many train requests for task {task_id} at once; try again")


def _set_task_status(store: ItemStore, space: Space, task_id: str, status: TrainStatus, version: int) -> None:
    """The task shows the state of its newest version only: an older version finishing late,
    or the task having been deleted meanwhile, changes nothing."""
    with contextlib.suppress(ConditionFailed):
        store.update(
            Update(
                keys.task_key(space, task_id),
                set={"last_train_status": status.value},
                condition=Condition(equals={"versions_created": version}),
            )
        )


#: Model attribute: the mails owed to the owner for the model's state changes, by kind. The
#: state change writes the entry (in the same write), and the one sender that claims it removes
#: it: no mail is sent twice. What became of it is then written in MAIL_STATUS.
OUTBOX = "outbox"
MAIL_STARTED = "started"  # its value: {"images": n}
MAIL_FINISHED = "finished"  # Trained or Failed; the mail is built from the model's state
#: Model attribute: what became of each mail, by kind ("sent" or "not sent: <why>").
MAIL_STATUS = "mail_status"
MAIL_SENT = "sent"
#: Model attribute: set with Trained, removed once deploy_if_wanted has run for the version.
DEPLOY_PENDING = "deploy_pending"


def _transition(
    store: ItemStore,
    ref: JobRef,
    to: TrainStatus,
    fields: dict[str, Any],
    froms: list[TrainStatus],
    owed: dict[str, dict[str, Any]] | None = None,
) -> bool:
    """Move the model to ``to`` if it is in one of ``froms``, owing the mails in ``owed``; False
    if it was not (a repeat, or the model moved elsewhere).

    The task's status follows even on a repeat that finds the model in ``to`` already: the first
    delivery may have stopped between the two writes (that write is idempotent)."""
    key = keys.model_key(ref.space, ref.model_id)
    changed = False
    item: Item | None = None
    # Each state in either spelling: versions stored before Kestrel took Ximilar's keep moving.
    for stored in [spelling for state in froms for spelling in (state.value, state.legacy)]:
        try:
            item = store.update(
                Update(
                    key,
                    set={"train_status": to.value, **fields},
                    map_set={OUTBOX: dict(owed)} if owed else {},
                    condition=Condition(equals={"train_status": stored}),
                )
            )
        except ConditionFailed:
            continue
        changed = True
        break
    else:
        item = store.get(key)
        if item is None or TrainStatus.parse(str(item.get("train_status"))) != to:
            return False
    _set_task_status(store, ref.space, ref.task_id, to, int(item["version"]))
    return changed


def mark_training(store: ItemStore, ref: JobRef, images: int) -> bool:
    """Training on ``images`` images (the "started" mail says how many)."""
    return _transition(
        store,
        ref,
        TrainStatus.TRAINING,
        {"started": now_iso()},
        [TrainStatus.WAITING],
        {MAIL_STARTED: {"images": images}},
    )


def mark_failed(store: ItemStore, ref: JobRef, reason: str, *, mail: bool = True) -> bool:
    """Failed with ``reason``; the production version stays as it was. ``mail=False`` when the
    owner learns it otherwise (the HTTP answer to a train request that could not be queued)."""
    return _transition(
        store,
        ref,
        TrainStatus.FAILED,
        {"failure_reason": reason[:2000], "trained": now_iso()},
        [TrainStatus.TRAINING, TrainStatus.WAITING],
        {MAIL_FINISHED: {}} if mail else None,
    )


def mark_trained(store: ItemStore, ref: JobRef, accuracy: float, metrics: dict[str, Any]) -> bool:
    """Trained with its metrics, then deployed if the task wants it. False for a repeated event;
    a repeat still completes the deploy step if the first delivery stopped before it."""
    fields = {"accuracy": accuracy, "metrics": metrics, "trained": now_iso(), DEPLOY_PENDING: True}
    changed = _transition(
        store, ref, TrainStatus.TRAINED, fields, [TrainStatus.TRAINING, TrainStatus.WAITING], {MAIL_FINISHED: {}}
    )
    complete_deploy(store, ref)
    return changed


def complete_deploy(store: ItemStore, ref: JobRef) -> None:
    """Run the deploy decision once per Trained version (only while DEPLOY_PENDING is set, so a
    late repeat cannot undo a deploy the owner changed by hand since)."""
    key = keys.model_key(ref.space, ref.model_id)
    item = store.get(key)
    if item is None or not item.get(DEPLOY_PENDING):
        return
    deploy_if_wanted(store, ref)
    with contextlib.suppress(ConditionFailed):  # deleted meanwhile
        store.update(Update(key, remove=[DEPLOY_PENDING], condition=Condition(exists=True)))


def owed_mails(store: ItemStore, ref: JobRef) -> dict[str, dict[str, Any]]:
    """The mails still owed for this model, by kind (none for a model that does not exist)."""
    item = store.get(keys.model_key(ref.space, ref.model_id))
    return dict((item or {}).get(OUTBOX) or {})


def take_mail(store: ItemStore, ref: JobRef, kind: str) -> bool:
    """Claim the owed mail ``kind``: True for exactly one caller, who then sends it and records
    what became of it (``record_mail_status``)."""
    try:
        store.update(
            Update(
                keys.model_key(ref.space, ref.model_id),
                map_remove={OUTBOX: [kind]},
                condition=Condition(exists=True, map_has=(OUTBOX, kind)),
            )
        )
    except ConditionFailed:
        return False
    return True


def record_mail_status(store: ItemStore, ref: JobRef, kind: str, status: str) -> None:
    """Say on the version what became of its mail ``kind`` (nothing if the version is gone)."""
    with contextlib.suppress(ConditionFailed):
        store.update(
            Update(
                keys.model_key(ref.space, ref.model_id),
                map_set={MAIL_STATUS: {kind: status[:1000]}},
                condition=Condition(exists=True),
            )
        )


def deploy_if_wanted(store: ItemStore, ref: JobRef) -> None:
    """Make the version production when the task has none, or auto-deploys a newer one.

    A conditional write on the production version observed: a concurrent deploy makes it
    fail, and the decision is taken again on the fresh state (no lost, no double bumps)."""
    model = get_model(store, ref.space, ref.model_id)
    for _ in range(_DEPLOY_RETRIES):
        try:
            task = get_task(store, ref.space, ref.task_id)
        except NotFound:
            return
        current = task.production_version
        wanted = current == -1 or (task.auto_deploy and model.version > current)
        if not wanted:
            return
        try:
            store.update(
                Update(
                    keys.task_key(ref.space, ref.task_id),
                    set={"production_version": model.version},
                    condition=Condition(equals={"production_version": current}),
                )
            )
            return
        except ConditionFailed:
            continue


def build_manifest(store: ItemStore, ref: JobRef) -> dict[str, Any]:
    """Everything the training job needs to know, as JSON: labels in output order, images, split."""
    task = get_task(store, ref.space, ref.task_id)
    model = model_from_item(store.get(keys.model_key(ref.space, ref.model_id)) or {})
    labels = trainable_labels(store, task)
    learnt = {label.label_id for label in labels}
    candidates: dict[str, tuple[str, ...]] = {}
    label_ids = [label.label_id for label in labels]
    if task.type == TaskType.MULTI_LABEL and task.negative_label_id:
        label_ids.append(task.negative_label_id)
    for label_id in label_ids:
        for membership in label_memberships(store, ref.space, label_id):
            candidates.setdefault(str(membership["image_id"]), ())
    items = store.batch_get([keys.image_key(ref.space, image_id) for image_id in candidates])
    skipped: list[str] = []
    chosen: list[tuple[dict[str, Any], tuple[str, ...]]] = []
    for item in items:
        own = tuple(sorted(label_id for label_id in (item.get("labels") or {}) if label_id in learnt))
        if task.type == TaskType.MULTI_CLASS and len(own) != 1:
            skipped.append(str(item["id"]))  # a category task needs exactly one of its labels
            continue
        chosen.append((item, own))
    # Ordered by content, not by id or upload order: the job sees the same images in the same
    # order every time the same photos are trained (the split, the folds, the fit all follow it).
    chosen.sort(key=lambda pair: split_order(str(pair[0]["content_hash"]), str(pair[0]["id"])))
    assignment = split(
        [
            SplitImage(str(item["id"]), own, bool(item.get("test_image", False)), str(item["content_hash"]))
            for item, own in chosen
        ]
    )
    return {
        "model_id": ref.model_id,
        "task_id": task.id,
        "task_name": task.name,
        "owner_id": ref.owner_id,
        "workspace": ref.space.workspace_id,
        "version": model.version,
        "task_type": task.type.value,
        "labels": [{"id": label.label_id, "name": label.name} for label in labels],
        "images": [
            {
                "id": str(item["id"]),
                "key": image_blob(image_from_item(item)),
                "sha256": str(item["content_hash"]),
                "labels": list(own),
                "split": assignment[str(item["id"])],
            }
            for item, own in chosen
        ],
        "skipped_images": skipped,
    }


def delete_model(store: ItemStore, space: Space, model_id: str) -> Model:
    """Delete a version that is not deployed (and not being trained)."""
    model = get_model(store, space, model_id)
    try:
        task = get_task(store, space, model.task_id)
    except NotFound:
        task = None
    if task is not None and task.production_version == model.version:
        raise Conflict(
            f"version {model.version} is the task's production version; deploy another version "
            "(PATCH task/{id}/ with production_version) before deleting it"
        )
    if model.train_status in (TrainStatus.WAITING, TrainStatus.TRAINING):
        raise Conflict(f"version {model.version} is {model.train_status.value}; wait until it ends")
    stored = (store.get(keys.model_key(space, model_id)) or {}).get("train_status")  # in its stored spelling
    writes = [
        Delete(keys.model_key(space, model_id), Condition(equals={"train_status": stored})),
        Delete(keys.model_version_key(space, model.task_id, model.version)),
    ]
    try:
        store.transact(writes)
    except ConditionFailed:
        raise Conflict(f"version {model.version} changed while being deleted; try again") from None
    return model
