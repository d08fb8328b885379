"""Request and response models: they validate input and document the API (OpenAPI)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, StringConstraints
from pydantic_core import PydanticCustomError

from kestrel.domain.entities import ID_PATTERN, LabelType, TaskType
from kestrel.domain.free_form import (
    MAX_META_BYTES,
    MAX_META_DEPTH,
    meta_data_problem,
    single_line_problem,
    text_problem,
)


def _single_line(value: str) -> str:
    """Names go into mail subjects and headers: one line, no control characters."""
    problem = single_line_problem(value)
    if problem is not None:
        raise PydanticCustomError("control_characters", problem)
    return value


def _plain_text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise PydanticCustomError("control_characters", problem)
    return value


def _bounded_meta_data(value: dict[str, Any] | None) -> dict[str, Any] | None:
    problem = meta_data_problem(value)
    if problem is not None:
        raise PydanticCustomError("meta_data_bounds", problem)
    return value


#: Every name (task, label, output name): trimmed, 1-255 characters, a single line.
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), AfterValidator(_single_line)
]
OptionalName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255), AfterValidator(_single_line)]
Text = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_plain_text)]
#: An image's own data: a JSON object, bounded in depth and size (checked before it is stored).
MetaData = Annotated[
    dict[str, Any] | None,
    AfterValidator(_bounded_meta_data),
    Field(description=f"any JSON object, at most {MAX_META_DEPTH} levels deep and {MAX_META_BYTES // 1024} KB as JSON"),
]
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
#: The id of an upload made through training-image/upload-url/: always one Kestrel issued (a UUID),
#: and it becomes part of a file name, so nothing else is let through.
UploadId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=ID_PATTERN)]


class Request(BaseModel):
    # Unknown fields (e.g. the ximilar client's "workspace") are ignored, as Ximilar does.
    model_config = ConfigDict(extra="ignore")


class TaskCreate(Request):
    name: Name
    description: Text | None = None
    type: TaskType = TaskType.MULTI_CLASS

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Scenes", "type": "multi_class"}]})


class TaskUpdate(Request):
    name: Name | None = None
    description: Text | None = None
    type: TaskType | None = None
    production_version: int | None = Field(None, ge=-1, description="deploy this trained version")
    auto_deploy: bool | None = Field(None, description="deploy each successful training automatically")

    model_config = ConfigDict(json_schema_extra={"examples": [{"production_version": 2}]})


class LabelRef(Request):
    label_id: Id

    model_config = ConfigDict(json_schema_extra={"examples": [{"label_id": "5b3e7c9e-2f4e-4a43-9f0e-1c2d3e4f5a6b"}]})


class LabelCreate(Request):
    name: Name
    type: LabelType = LabelType.CATEGORY
    description: Text | None = None
    output_name: OptionalName | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "forest", "type": "category"}]})


class LabelUpdate(Request):
    name: Name | None = None
    type: LabelType | None = None
    description: Text | None = None
    output_name: OptionalName | None = None


class ImageUpload(Request):
    base64: str | None = Field(None, description="the image's bytes in base64, with or without a data: prefix")
    img_path: str | None = Field(None, description="multipart file field (curl -F img_path=@photo.jpg)")
    upload_id: UploadId | None = Field(None, description="an upload made through training-image/upload-url/")
    noresize: bool = False
    test_image: bool = Field(False, description="always keep this image in the evaluation part")
    meta_data: MetaData = None
    labels: list[Id] | None = Field(None, description="label ids to put on the image at once")

    model_config = ConfigDict(json_schema_extra={"examples": [{"base64": "iVBORw0KGgo...", "labels": []}]})


class ImageUpdate(Request):
    meta_data: MetaData = None
    test_image: bool | None = None


class UploadUrlRequest(Request):
    size: int | None = Field(None, ge=1, description="the number of bytes you will PUT (optional)")


class ImageBatchUpdate(Request):
    images: list[Id] = Field(default_factory=list)
    labels: list[Id] = Field(default_factory=list, description="select images that have any of these")
    labels_add: list[Id] = Field(default_factory=list, alias="labels-add")
    labels_remove: list[Id] = Field(default_factory=list, alias="labels-remove")
    mark_test: bool = Field(False, alias="mark-test")
    unmark_test: bool = Field(False, alias="unmark-test")

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class WorkspaceCreate(Request):
    name: Name
    description: Text | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Retail shelves"}]})


class WorkspaceUpdate(Request):
    name: Name | None = None
    description: Text | None = None


# -- responses -------------------------------------------------------------------------------


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


class TaskOut(BaseModel):
    id: str
    name: str
    description: str
    type: TaskType
    production_version: int = Field(description="-1 until a first successful training")
    last_train_status: str | None
    auto_deploy: bool
    labels: list[LabelOut]
    workspace: str
    created: str


class ImageOut(BaseModel):
    id: str
    created: str
    img_path: str = Field(description="a URL that serves the original for a limited time")
    thumb_img_path: str
    img_width: int
    img_height: int
    labels: list[LabelOut]
    meta_data: dict[str, Any]
    test_image: bool
    noresize: bool
    workspace: str


class ModelOut(BaseModel):
    id: str
    task: str
    task_name: str
    version: int
    train_status: str
    accuracy: float | None
    metrics: dict[str, Any]
    created: str
    started: str | None
    trained: str | None
    failure_reason: str | None
    mail_status: dict[str, str] = Field(
        description="what became of each mail about this version ('started', 'finished'): 'sent' or "
        "'not sent: <why>'; a mail never decides the training's result"
    )


class ModelDownloadOut(BaseModel):
    id: str
    version: int
    model_url: str = Field(description="the ONNX file classify runs; input 'image' [N,3,224,224], see the card")
    card_url: str
    expires_in: int
    card: dict[str, Any] = Field(description="labels in output order, thresholds, preprocessing, metrics")


class ModelCardOut(BaseModel):
    """The full model card, as the training job wrote it (the model JSON's ``metrics`` is a bounded
    summary of it); its other fields are those of ``metrics``."""

    model_config = ConfigDict(extra="allow")
    accuracy: float
    misclassified: list[dict[str, Any]] = Field(description="every test image the version got wrong")


class UploadUrlOut(BaseModel):
    upload_id: str
    url: str
    method: str
    max_bytes: int
    expires_in: int


class PageOut(BaseModel):
    count: int
    next: str | None
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
    updated: int


class WorkspaceOut(BaseModel):
    id: str
    name: str
    description: str
    owner: str = Field(description="the id of the account that owns the workspace")
    is_default: bool = Field(description="requests without 'workspace' use the default workspace")
    created: str | None = Field(description="null for a default workspace that was never renamed")


class WorkspaceList(RootModel[list[WorkspaceOut]]):
    """Every workspace of the account, the default one first (a plain list, as Ximilar answers)."""


class ErrorOut(BaseModel):
    detail: str
