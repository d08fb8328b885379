"""Entities as the JSON the Ximilar-compatible API returns."""

from __future__ import annotations

from typing import Any

from kestrel.domain.entities import Label, Model, Task, TrainingImage, Workspace
from kestrel.ports import Ports
from kestrel.ports.items import Item
from kestrel.store import keys
from kestrel.store.images import image_from_item
from kestrel.store.keys import Space
from kestrel.store.labels import get_labels, label_from_item
from kestrel.store.tasks import task_from_item
from kestrel.store.versions import model_from_item


def label_json(label: Label) -> dict[str, Any]:
    return {
        "id": label.id,
        "name": label.name,
        "type": label.type.value,
        "description": label.description,
        "output_name": label.output_name,
        "images_count": label.images_count,
        "tasks_count": len(label.task_ids),
        "negative_for_task": label.negative_for_task,
        "workspace": label.workspace_id,
        "created": label.created,
    }


def labels_json(items: list[Item]) -> list[dict[str, Any]]:
    return [label_json(label_from_item(item)) for item in items]


def _labels_by_id(ports: Ports, space: Space, label_ids: set[str]) -> dict[str, Label]:
    return {label.id: label for label in get_labels(ports.items, space, sorted(label_ids))}


def task_json(ports: Ports, task: Task, labels: dict[str, Label] | None = None) -> dict[str, Any]:
    if labels is None:
        labels = _labels_by_id(ports, Space(task.owner_id, task.workspace_id), set(task.label_ids))
    ordered = sorted(task.label_ids.items(), key=lambda pair: pair[1])  # in the order attached
    return {
        "id": task.id,
        "name": task.name,
        "description": task.description,
        "type": task.type.value,
        "production_version": task.production_version,
        "last_train_status": task.last_train_status,
        "auto_deploy": task.auto_deploy,
        "labels": [label_json(labels[label_id]) for label_id, _ in ordered if label_id in labels],
        "workspace": task.workspace_id,
        "created": task.created,
    }


def tasks_json(ports: Ports, space: Space, items: list[Item]) -> list[dict[str, Any]]:
    tasks = [task_from_item(item) for item in items]
    labels = _labels_by_id(ports, space, {label_id for task in tasks for label_id in task.label_ids})
    return [task_json(ports, task, labels) for task in tasks]


def image_json(
    ports: Ports, image: TrainingImage, root_url: str, labels: dict[str, Label] | None = None
) -> dict[str, Any]:
    if labels is None:
        labels = _labels_by_id(ports, Space(image.owner_id, image.workspace_id), set(image.label_ids))
    ttl = ports.settings.limits.url_ttl_seconds
    ordered = sorted(image.label_ids.items(), key=lambda pair: pair[1])
    return {
        "id": image.id,
        "created": image.created,
        "img_path": ports.blobs.download_url(keys.image_blob(image.owner_id, image.id), ttl, root_url),
        "thumb_img_path": ports.blobs.download_url(keys.thumb_blob(image.owner_id, image.id), ttl, root_url),
        "img_width": image.width,
        "img_height": image.height,
        "labels": [label_json(labels[label_id]) for label_id, _ in ordered if label_id in labels],
        "meta_data": image.meta_data,
        "test_image": image.test_image,
        "noresize": image.noresize,
        "workspace": image.workspace_id,
    }


def images_json(ports: Ports, space: Space, items: list[Item], root_url: str) -> list[dict[str, Any]]:
    images = [image_from_item(item) for item in items]
    labels = _labels_by_id(ports, space, {label_id for image in images for label_id in image.label_ids})
    return [image_json(ports, image, root_url, labels) for image in images]


def workspace_json(workspace: Workspace) -> dict[str, Any]:
    return {
        "id": workspace.id,
        "name": workspace.name,
        "description": workspace.description,
        "owner": workspace.owner_id,
        "is_default": workspace.is_default,
        "created": workspace.created or None,
    }


def model_json(model: Model) -> dict[str, Any]:
    return {
        "id": model.id,
        "task": model.task_id,
        "task_name": model.task_name,
        "version": model.version,
        "train_status": model.train_status.value,
        "accuracy": model.accuracy,
        "metrics": model.metrics,
        "created": model.created,
        "started": model.started,
        "trained": model.trained,
        "failure_reason": model.failure_reason,
        "mail_status": model.mail_status,
    }


def models_json(items: list[Item]) -> list[dict[str, Any]]:
    return [model_json(model_from_item(item)) for item in items]
