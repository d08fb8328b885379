"""Route: task/{id}/similar/ — the task's training images nearest to each record (served by the
classify function: describing a sent image needs the model)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import ConfigDict, Field

from kestrel.api.context import RequestScope
from kestrel.api.docs import responses
from kestrel.api.responses import NeighbourOut, SimilarOut, SimilarRecordOut, Statistics, Status
from kestrel.api.schemas import Request
from kestrel.api.views import images_out
from kestrel.usecases.classify import MAX_RECORDS
from kestrel.usecases.similar import (
    DEFAULT_K,
    IMAGE_ID_FIELD,
    MAX_K,
    SimilarCommand,
    SimilarRecord,
    SimilarResult,
    similar,
)

router = APIGatewayRouter()
PATH = "/recognition/v2/task/<task_id>/similar"


class SimilarRequest(Request):
    records: list[dict[str, Any]] = Field(
        description=f"1 to {MAX_RECORDS} of {{'_url': ...}}, {{'_base64': ...}} or {{'{IMAGE_ID_FIELD}': ...}}; "
        "other fields come back as sent"
    )
    k: int = Field(DEFAULT_K, ge=1, le=MAX_K, description=f"neighbours per record (1 to {MAX_K})")
    version: int | None = Field(
        None, ge=1, description="a TRAINED version whose descriptors to search; default (or null): production"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"records": [{"_url": "https://example.com/cat.jpg"}], "k": 5},
                {"records": [{IMAGE_ID_FIELD: "0b1d7c3e-5a8f-4e7e-9a43-3f6f1c2d9e10"}]},
            ]
        },
    )


def _record_out(scope: RequestScope, result: SimilarRecord) -> SimilarRecordOut:
    neighbours = None
    if result.neighbours is not None:
        shown = images_out(scope, [neighbour.image for neighbour in result.neighbours])
        neighbours = [
            NeighbourOut(**image.model_dump(), similarity=neighbour.similarity)
            for image, neighbour in zip(shown, result.neighbours, strict=True)
        ]
    return SimilarRecordOut.model_validate(
        {**result.echo, "_status": Status(code=result.code, text=result.text), "similar": neighbours}
    )


def similar_out(scope: RequestScope, done: SimilarResult) -> SimilarOut:
    return SimilarOut(
        task_id=done.task_id,
        version=done.version,
        indexed_images=done.indexed_images,
        status=Status(code=200, text="OK"),
        statistics=Statistics(processing_time=done.seconds),
        records=[_record_out(scope, result) for result in done.records],
    )


@router.post(
    PATH,
    summary=f"The task's training images most similar to each of 1 to {MAX_RECORDS} images",
    description="Exact cosine search over the descriptors stored when the version was trained. "
    "Images added after that training are not found until the next one; deleted images are left out.",
    tags=["similarity"],
    responses=responses(200, (400, 401, 404, 503)),
)
def similar_images(task_id: str, body: SimilarRequest) -> SimilarOut:
    scope = RequestScope(router)
    command = SimilarCommand(scope.space, task_id, body.records, k=body.k, version=body.version)
    return similar_out(scope, similar(scope.ports, command))
