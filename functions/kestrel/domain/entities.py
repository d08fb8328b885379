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
    WAITING = "Waiting"
    TRAINING = "Training"
    TRAINED = "Trained"
    FAILED = "Failed"


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
    last_train_status: str | None = None
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


@dataclass
class TrainingImage:
    id: str
    owner_id: str
    created: str
    content_hash: str
    format: str
    width: int
    height: int
    size_bytes: int
    label_ids: dict[str, str] = field(default_factory=dict)  # label id -> when added
    meta_data: dict[str, Any] = field(default_factory=dict)
    test_image: bool = False
    noresize: bool = False
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
