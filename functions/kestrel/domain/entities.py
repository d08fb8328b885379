"""The entities of Kestrel and their plain rules. No I/O here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class TaskType(StrEnum):
    MULTI_CLASS = "multi_class"
    MULTI_LABEL = "multi_label"


class LabelType(StrEnum):
    CATEGORY = "category"
    TAG = "tag"


class TrainStatus(StrEnum):
    """A version's state, spelt as Ximilar spells it (its tools compare ``== "TRAINED"``)."""

    WAITING = "WAITING"
    TRAINING = "IN_TRAINING"
    TRAINED = "TRAINED"
    FAILED = "FAILED"

    @property
    def legacy(self) -> str:
        """How Kestrel stored this state before it took Ximilar's spelling ("Trained", ...)."""
        return _LEGACY_SPELLING[self]

    @classmethod
    def parse(cls, text: str) -> TrainStatus:
        """A stored state in either spelling: items written before the change keep working."""
        for status in cls:
            if text in (status.value, status.legacy):
                return status
        raise ValueError(f"unknown training state {text!r}")


_LEGACY_SPELLING = {
    TrainStatus.WAITING: "Waiting",
    TrainStatus.TRAINING: "Training",
    TrainStatus.TRAINED: "Trained",
    TrainStatus.FAILED: "Failed",
}


#: Which label type a task of each type takes (Ximilar: categories classify, tags tag).
LABEL_TYPE_FOR_TASK = {TaskType.MULTI_CLASS: LabelType.CATEGORY, TaskType.MULTI_LABEL: LabelType.TAG}


#: The shape of every id Kestrel issues (any case): what ``new_id`` makes.
ID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def new_id() -> str:
    """Ids are UUID version 4: the ximilar client's patterns expect exactly that."""
    return str(uuid.uuid4())


def now_iso() -> str:
    """UTC timestamp with microseconds; sorts lexicographically in time order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_workspace_id(owner_id: str) -> str:
    """Every owner's default workspace: its id is stable and derived from the owner's, so it
    exists without being stored (and holds everything stored before workspaces existed)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kestrel:workspace:{owner_id}"))


#: What the ximilar client sends (or omits) for the default workspace.
DEFAULT_WORKSPACE_NAME = "Default"


@dataclass
class Owner:
    id: str
    email: str
    name: str
    created: str

    @property
    def workspace(self) -> str:
        return default_workspace_id(self.id)


@dataclass
class Workspace:
    """A separate set of tasks, labels, images and models of one owner."""

    id: str
    owner_id: str
    name: str
    description: str
    created: str

    @property
    def is_default(self) -> bool:
        return self.id == default_workspace_id(self.owner_id)


@dataclass
class Task:
    id: str
    owner_id: str
    name: str
    description: str
    type: TaskType
    created: str
    production_version: int = -1
    last_train_status: TrainStatus | None = None
    auto_deploy: bool = False
    label_ids: dict[str, str] = field(default_factory=dict)  # label id -> when attached
    versions_created: int = 0
    negative_label_id: str | None = None  # multi_label: images with this label carry no tag
    workspace_id: str = ""  # set by the store; stored items without one are in the default workspace


@dataclass
class Label:
    id: str
    owner_id: str
    name: str
    type: LabelType
    description: str
    output_name: str
    created: str
    images_count: int = 0
    task_ids: dict[str, str] = field(default_factory=dict)  # task id -> when attached
    negative_for_task: str | None = None  # set on the one negative label of a multi_label task
    workspace_id: str = ""  # set by the store; stored items without one are in the default workspace


#: The file extension of each accepted image format: download URLs end in ``<image id>.<ext>``.
EXTENSION_FOR_FORMAT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
#: The file names of images stored before their names were unique (every URL ended in /original).
LEGACY_IMAGE_FILE = "original"
LEGACY_THUMB_FILE = "thumb.jpg"


def image_file_names(image_id: str, image_format: str) -> tuple[str, str]:
    """The stored file names of an image and its thumbnail: unique to the image, with the real
    extension, because clients name downloads after the URL's last segment (ximilar's does)."""
    return f"{image_id}.{EXTENSION_FOR_FORMAT.get(image_format, 'img')}", f"{image_id}_thumb.jpg"


@dataclass
class TrainingImage:
    id: str
    owner_id: str
    created: str
    content_hash: str
    format: str
    mime: str
    width: int
    height: int
    size_bytes: int
    label_ids: dict[str, str] = field(default_factory=dict)  # label id -> when added
    meta_data: dict[str, Any] = field(default_factory=dict)
    test_image: bool = False
    noresize: bool = False
    file_name: str = LEGACY_IMAGE_FILE
    thumb_name: str = LEGACY_THUMB_FILE
    workspace_id: str = ""  # set by the store; stored items without one are in the default workspace


@dataclass
class Model:
    id: str
    owner_id: str
    task_id: str
    task_name: str
    version: int
    train_status: TrainStatus
    created: str
    accuracy: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    trained: str | None = None
    started: str | None = None
    failure_reason: str | None = None
    #: What became of each mail owed for this version ("started", "finished"): "sent", or
    #: "not sent: <why>". The mail never decides the training's fate; this says what happened.
    mail_status: dict[str, str] = field(default_factory=dict)
    workspace_id: str = ""  # set by the store; stored items without one are in the default workspace

    # How honest the accuracy is, from the card (docs/api.md): None before training ends and for
    # versions trained before these fields existed.
    @property
    def accuracy_interval(self) -> list[float] | None:
        return _interval(self.metrics.get("accuracy_interval"))

    @property
    def cross_validated_accuracy(self) -> float | None:
        value = self.metrics.get("cross_validated_accuracy")
        return float(value) if value is not None else None

    @property
    def cross_validated_accuracy_interval(self) -> list[float] | None:
        return _interval(self.metrics.get("cross_validated_accuracy_interval"))

    @property
    def evaluation_method(self) -> str | None:
        value = self.metrics.get("evaluation_method")
        return str(value) if value is not None else None

    @property
    def evaluation_summary(self) -> str | None:
        value = self.metrics.get("evaluation_summary")
        return str(value) if value is not None else None

    @property
    def possibly_mislabelled(self) -> list[dict[str, Any]] | None:
        """The card's possibly mislabelled training images (training/mislabelled.py)."""
        value = self.metrics.get("possibly_mislabelled")
        return [dict(entry) for entry in value] if isinstance(value, list) else None

    @property
    def possibly_mislabelled_total(self) -> int | None:
        value = self.metrics.get("possibly_mislabelled_total")
        return int(value) if value is not None else None


def _interval(value: Any) -> list[float] | None:
    return [float(value[0]), float(value[1])] if isinstance(value, list | tuple) and len(value) == 2 else None
