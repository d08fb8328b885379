"""Request models: they validate input and document it (OpenAPI). Answers: kestrel.api.responses."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

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
    # Unknown fields never get here: kestrel.api.strict refuses them (400) before validation's
    # result reaches the route; the model drops only what that check lets through everywhere.
    model_config = ConfigDict(extra="ignore")

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # The document says what the server enforces: no field beyond those listed.
        schema = handler.resolve_ref_schema(handler(core_schema))
        schema["additionalProperties"] = False
        return schema


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


class ReviewDecision(Request):
    label_ids: list[Id] | None = Field(
        None,
        max_length=48,
        description="the image's labels in this task: one category (multi_class), or tags (multi_label)",
    )
    skip: bool = Field(False, description="true: not now; the image leaves the queue unlabelled")

    model_config = ConfigDict(json_schema_extra={"examples": [{"label_ids": ["5b3e7c9e-2f4e-4a43-9f0e-1c2d3e4f5a6b"]}]})


class WorkspaceCreate(Request):
    name: Name
    description: Text | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Retail shelves"}]})


class WorkspaceUpdate(Request):
    name: Name | None = None
    description: Text | None = None
