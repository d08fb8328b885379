"""Entities as answers, with what the request adds: the labels they show and signed URLs.

Each function reads what the answer needs in as few store calls as it can (one batch of labels
for a whole page), then builds the models of :mod:`kestrel.api.responses`."""

from __future__ import annotations

from kestrel.api.context import RequestScope
from kestrel.api.responses import ImageOut, LabelOut, ModelOut, TaskOut
from kestrel.domain.entities import Label, Model, Task, TrainingImage
from kestrel.store.images import image_blob, images_by_id, thumb_blob
from kestrel.store.labels import labels_by_id


def _labels(scope: RequestScope, label_ids: set[str]) -> dict[str, Label]:
    return labels_by_id(scope.ports.items, scope.space, label_ids)


def tasks_out(scope: RequestScope, tasks: list[Task]) -> list[TaskOut]:
    labels = _labels(scope, {label_id for task in tasks for label_id in task.label_ids})
    return [TaskOut.of(task, labels) for task in tasks]


def task_out(scope: RequestScope, task: Task) -> TaskOut:
    return tasks_out(scope, [task])[0]


def images_out(scope: RequestScope, images: list[TrainingImage]) -> list[ImageOut]:
    labels = _labels(scope, {label_id for image in images for label_id in image.label_ids})
    blobs, ttl, root = scope.ports.blobs, scope.ports.settings.limits.url_ttl_seconds, scope.root_url
    return [
        ImageOut.of(
            image,
            labels,
            img_path=blobs.download_url(image_blob(image), ttl, root),
            thumb_img_path=blobs.download_url(thumb_blob(image), ttl, root),
        )
        for image in images
    ]


def image_out(scope: RequestScope, image: TrainingImage) -> ImageOut:
    return images_out(scope, [image])[0]


def labels_out(labels: list[Label]) -> list[LabelOut]:
    return [LabelOut.of(label) for label in labels]


def models_out(models: list[Model]) -> list[ModelOut]:
    return [ModelOut.of(model) for model in models]


def model_out(scope: RequestScope, model: Model) -> ModelOut:
    """One version, with a thumbnail URL and the current labels of each possibly mislabelled
    image (at most 50: one batch read); a listing of versions leaves them null."""
    out = ModelOut.of(model)
    if not out.possibly_mislabelled:
        return out
    found = images_by_id(scope.ports.items, scope.space, [entry.image_id for entry in out.possibly_mislabelled])
    blobs, ttl, root = scope.ports.blobs, scope.ports.settings.limits.url_ttl_seconds, scope.root_url
    for entry in out.possibly_mislabelled:
        image = found.get(entry.image_id)
        if image is not None:
            entry.thumb_img_path = blobs.download_url(thumb_blob(image), ttl, root)
            entry.current_labels = sorted(image.label_ids, key=lambda label_id: image.label_ids[label_id])
    return out
