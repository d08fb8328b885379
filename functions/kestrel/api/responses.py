"""What the API answers: one typed model per entity, built from the entity in one place.

Routes return these models; Powertools validates each answer against the route's return type
(a mismatch is a 500 and a log line, never a malformed answer) and the OpenAPI document is
generated from the same models, so the reference cannot drift from what routes return."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from kestrel.domain.entities import (
    Label,
    LabelType,
    Model,
    Task,
    TaskType,
    TrainingImage,
    TrainStatus,
    Workspace,
    default_workspace_id,
)


def workspace_of(entity: Label | Task | TrainingImage) -> str:
    """The entity's workspace id (items stored before workspaces are in the default one)."""
    return entity.workspace_id or default_workspace_id(entity.owner_id)


class LabelOut(BaseModel):
    id: str
    name: str
    type: LabelType
    description: str
    output_name: str
    images_count: int
    tasks_count: int
    negative_for_task: str | None = None
    workspace: str
    created: str

    @classmethod
    def of(cls, label: Label) -> LabelOut:
        return cls(
            id=label.id,
            name=label.name,
            type=label.type,
            description=label.description,
            output_name=label.output_name,
            images_count=label.images_count,
            tasks_count=len(label.task_ids),
            negative_for_task=label.negative_for_task,
            workspace=workspace_of(label),
            created=label.created,
        )


def _in_attach_order(attached: dict[str, str], labels: dict[str, Label]) -> list[LabelOut]:
    ordered = sorted(attached.items(), key=lambda pair: pair[1])
    return [LabelOut.of(labels[label_id]) for label_id, _ in ordered if label_id in labels]


class TaskOut(BaseModel):
    id: str
    name: str
    description: str
    type: TaskType
    production_version: int = Field(description="-1 until a first successful training")
    last_train_status: TrainStatus | None = Field(description="the newest version's state; null before any training")
    auto_deploy: bool
    labels: list[LabelOut] = Field(description="in the order they were attached")
    workspace: str
    created: str

    @classmethod
    def of(cls, task: Task, labels: dict[str, Label]) -> TaskOut:
        """``labels``: at least the task's labels, by id."""
        return cls(
            id=task.id,
            name=task.name,
            description=task.description,
            type=task.type,
            production_version=task.production_version,
            last_train_status=task.last_train_status,
            auto_deploy=task.auto_deploy,
            labels=_in_attach_order(task.label_ids, labels),
            workspace=workspace_of(task),
            created=task.created,
        )


class ImageOut(BaseModel):
    id: str
    created: str
    img_path: str = Field(description="a URL that serves the original for a limited time; ends in <id>.<ext>")
    thumb_img_path: str = Field(description="the same for a JPEG thumbnail; ends in <id>_thumb.jpg")
    img_width: int
    img_height: int
    labels: list[LabelOut]
    meta_data: dict[str, Any]
    test_image: bool
    noresize: bool
    workspace: str

    @classmethod
    def of(cls, image: TrainingImage, labels: dict[str, Label], img_path: str, thumb_img_path: str) -> ImageOut:
        return cls(
            id=image.id,
            created=image.created,
            img_path=img_path,
            thumb_img_path=thumb_img_path,
            img_width=image.width,
            img_height=image.height,
            labels=_in_attach_order(image.label_ids, labels),
            meta_data=image.meta_data,
            test_image=image.test_image,
            noresize=image.noresize,
            workspace=workspace_of(image),
        )


class MislabelledOut(BaseModel):
    """A training image whose own label a model that never saw it disagrees with (the card's
    ``possibly_mislabelled``)."""

    image_id: str
    labels: list[str] = Field(description="the label ids it was trained with")
    suggested: list[str] = Field(
        description="the label ids the model suggests instead (categories: the one it predicted; "
        "tags: its own with each disputed tag added or removed)"
    )
    probs: dict[str, float] = Field(
        description="the out-of-fold probability of each label involved (own and suggested), by label id"
    )
    margin: float = Field(
        description="how much more probability the model puts on its answer than on the image's own: "
        "at least 0.5 to be listed; the list is ordered by it, largest first"
    )
    thumb_img_path: str | None = Field(
        None,
        description="a URL of the image's thumbnail (GET model/{id}/ only; null in lists and when the "
        "image was deleted since)",
    )
    current_labels: list[str] | None = Field(
        None,
        description="the label ids the image carries now, to tell one relabelled since the training "
        "(GET model/{id}/ only; null in lists and when the image was deleted since)",
    )

    @classmethod
    def of(cls, entry: dict[str, Any]) -> MislabelledOut:
        return cls(
            image_id=str(entry["image_id"]),
            labels=[str(label) for label in entry["labels"]],
            suggested=[str(label) for label in entry["suggested"]],
            probs={str(label): float(p) for label, p in entry["probs"].items()},
            margin=float(entry["margin"]),
        )


class ModelOut(BaseModel):
    id: str
    task: str
    task_name: str
    version: int
    train_status: TrainStatus = Field(description="WAITING -> IN_TRAINING -> TRAINED | FAILED (Ximilar's spelling)")
    accuracy: float | None = Field(description="share of the test part the evaluated model got right")
    accuracy_interval: list[float] | None = Field(
        description="95 % Wilson score interval [low, high] of `accuracy`; null until trained"
    )
    cross_validated_accuracy: float | None = Field(
        description="5-fold cross-validated accuracy over every labelled image, when the test part is small "
        "(fewer than 100 images, or a label with fewer than 10); else null"
    )
    cross_validated_accuracy_interval: list[float] | None = Field(
        description="95 % Wilson score interval of `cross_validated_accuracy`"
    )
    evaluation_method: str | None = Field(description='"holdout" or "holdout+cross_validation"; null until trained')
    evaluation_summary: str | None = Field(
        description="how the accuracy was measured and what was deployed, in words (also on the card)"
    )
    possibly_mislabelled: list[MislabelledOut] | None = Field(
        description="training images whose own label the model's out-of-fold prediction disagrees with "
        "by a margin of at least 0.5, largest first, at most 50; null until trained (and for versions "
        "trained before the finder)"
    )
    possibly_mislabelled_total: int | None = Field(
        description="how many images passed the cut (the list keeps the first 50)"
    )
    metrics: dict[str, Any]
    created: str
    started: str | None
    trained: str | None
    failure_reason: str | None
    mail_status: dict[str, str] = Field(
        description="what became of each mail about this version ('started', 'finished'): 'sent' or "
        "'not sent: <why>'; a mail never decides the training's result"
    )

    @classmethod
    def of(cls, model: Model) -> ModelOut:
        return cls(
            id=model.id,
            task=model.task_id,
            task_name=model.task_name,
            version=model.version,
            train_status=model.train_status,
            accuracy=model.accuracy,
            accuracy_interval=model.accuracy_interval,
            cross_validated_accuracy=model.cross_validated_accuracy,
            cross_validated_accuracy_interval=model.cross_validated_accuracy_interval,
            evaluation_method=model.evaluation_method,
            evaluation_summary=model.evaluation_summary,
            possibly_mislabelled=None
            if model.possibly_mislabelled is None
            else [MislabelledOut.of(entry) for entry in model.possibly_mislabelled],
            possibly_mislabelled_total=model.possibly_mislabelled_total,
            metrics=model.metrics,
            created=model.created,
            started=model.started,
            trained=model.trained,
            failure_reason=model.failure_reason,
            mail_status=model.mail_status,
        )


class ModelCardOut(BaseModel):
    """The full model card, as the training job wrote it (the model JSON's ``metrics`` is a bounded
    summary of it); its other fields are those of ``metrics``."""

    model_config = ConfigDict(extra="allow")
    accuracy: float
    misclassified: list[dict[str, Any]] = Field(description="every test image the version got wrong")


class ModelDownloadOut(BaseModel):
    id: str
    version: int
    model_url: str = Field(description="the ONNX file classify runs; input 'image' [N,3,224,224], see the card")
    card_url: str
    expires_in: int
    card: dict[str, Any] = Field(description="labels in output order, thresholds, preprocessing, metrics")


class UploadUrlOut(BaseModel):
    upload_id: str
    url: str
    method: str
    max_bytes: int
    expires_in: int


class PageOut(BaseModel):
    count: int = Field(description="items in the whole listing")
    next: str | None = Field(description="the next page's full URL; null on the last page")
    previous: str | None


class TaskPage(PageOut):
    results: list[TaskOut]


class LabelPage(PageOut):
    results: list[LabelOut]


class ImagePage(PageOut):
    results: list[ImageOut]


class ModelPage(PageOut):
    results: list[ModelOut]


class BatchUpdateOut(BaseModel):
    status: str
    updated: int = Field(description="how many images the update selected")


class ErrorOut(BaseModel):
    detail: str


# -- classify --------------------------------------------------------------------------------


class Status(BaseModel):
    code: int = Field(description="200 when done; else the HTTP code of what went wrong")
    text: str


class ClassifyErrorOut(BaseModel):
    """A refused classify request: the ximilar client raises its exception from ``status``."""

    detail: str
    status: Status


class LabelScore(BaseModel):
    id: str
    name: str
    prob: float


class Statistics(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    processing_time: float = Field(alias="processing time", description="seconds spent on the request")


def _absent(value: Any) -> bool:
    return value is None


class RecordOut(BaseModel):
    """One classified record. Fields the caller put in the record (other than ``_base64``) come
    back unchanged, so callers can match answers to their own ids. A field that does not apply
    (no labels for a failed record, no descriptor unless asked) is left out, not null."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    status: Status = Field(alias="_status", description="this record's own outcome (4xx: only it failed)")
    best_label: LabelScore | None = Field(None, exclude_if=_absent)
    labels: list[LabelScore] | None = Field(None, exclude_if=_absent, description="every label, most probable first")
    best_labels: list[LabelScore] | None = Field(
        None, exclude_if=_absent, description="multi_label: every label over its threshold"
    )
    width: int | None = Field(None, alias="_width", exclude_if=_absent)
    height: int | None = Field(None, alias="_height", exclude_if=_absent)
    descriptor: list[float] | None = Field(None, alias="_descriptor", exclude_if=_absent, description="descriptor=1")
    stored_image_id: str | None = Field(
        None,
        alias="_stored_image_id",
        exclude_if=_absent,
        description="with store_images: the training image that keeps the record",
    )


class ClassifyOut(BaseModel):
    task_id: str
    version: int
    status: Status
    statistics: Statistics
    records: list[RecordOut]


# -- similar -----------------------------------------------------------------------------------


class NeighbourOut(ImageOut):
    """A training image near the record, with its current labels and thumbnail."""

    similarity: float = Field(description="cosine similarity of the descriptors, -1..1 (1: the same picture)")


class SimilarRecordOut(BaseModel):
    """One record's neighbours. Fields the caller put in the record (other than ``_base64``)
    come back unchanged."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    status: Status = Field(alias="_status", description="this record's own outcome (4xx: only it failed)")
    similar: list[NeighbourOut] | None = Field(
        None, exclude_if=_absent, description="the k nearest training images, most similar first"
    )


class SimilarOut(BaseModel):
    task_id: str
    version: int = Field(description="the model version whose image descriptors were searched")
    indexed_images: int = Field(description="images in that version's index (those it was trained on)")
    status: Status
    statistics: Statistics
    records: list[SimilarRecordOut]


class WorkspaceOut(BaseModel):
    id: str
    name: str
    description: str
    owner: str = Field(description="the id of the account that owns the workspace")
    is_default: bool = Field(description="requests without 'workspace' use the default workspace")
    created: str | None = Field(description="null for a default workspace that was never renamed")

    @classmethod
    def of(cls, workspace: Workspace) -> WorkspaceOut:
        return cls(
            id=workspace.id,
            name=workspace.name,
            description=workspace.description,
            owner=workspace.owner_id,
            is_default=workspace.is_default,
            created=workspace.created or None,
        )


class WorkspaceList(RootModel[list[WorkspaceOut]]):
    """Every workspace of the account, the default one first (a plain list, as Ximilar answers)."""


# -- review queue ----------------------------------------------------------------------------


class ReviewPrediction(BaseModel):
    version: int = Field(description="the version that classified the image")
    model_id: str
    labels: list[LabelScore] = Field(description="the most probable labels (at most 10), most probable first")
    best_labels: list[LabelScore] | None = Field(
        description="multi_label: the tags over their thresholds (the suggestion); null for multi_class"
    )
    classified: str


class ReviewItemOut(BaseModel):
    image: ImageOut
    prediction: ReviewPrediction | None = Field(
        description="what the model said when classify stored the image; null for an unlabelled image it never saw"
    )
    uncertainty: float | None = Field(
        description="multi_class: p1 - p2 of the two most probable labels; multi_label: the smallest "
        "|p - threshold| over the tags. Smaller is more uncertain; null without a prediction"
    )
    suggestion: list[str] = Field(description="label ids the model suggests (Enter in the console confirms them)")


class ReviewPage(PageOut):
    results: list[ReviewItemOut]


class ReviewDecisionOut(BaseModel):
    image_id: str
    task_id: str
    status: str = Field(description="reviewed | skipped")
    label_ids: list[str] = Field(description="the labels the image got (empty when skipped)")
    decided: str


class ReviewSummaryOut(BaseModel):
    task_id: str
    queued: int = Field(description="stored images with a prediction still waiting for review")
    reviewed: int
    skipped: int
    last_version: int | None = Field(description="the task's newest version; null before the first training")
    reviewed_since_last_version: int = Field(
        description="images reviewed after that version was requested: the next version trains on them too"
    )
