"""Route: classify/ — parse the request, run the classify use case, render its answer.

Every answer has ``status: {code, text}`` (errors keep ``detail`` too): the ximilar client raises
its exception from ``status``, so a refused request surfaces in callers as Ximilar's would."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import ConfigDict, Field

from kestrel.api.context import RequestScope
from kestrel.api.docs import responses
from kestrel.api.responses import ClassifyErrorOut, ClassifyOut, LabelScore, RecordOut, Statistics, Status
from kestrel.api.schemas import Id, Request
from kestrel.domain.errors import InvalidInput
from kestrel.usecases.classify import MAX_RECORDS, Classification, ClassifyCommand, RecordResult, classify

router = APIGatewayRouter()
PATH = "/recognition/v2/classify"


class ClassifyRequest(Request):
    task_id: Id | None = Field(None, description="the task to classify with (or 'task')")
    task: Id | None = Field(None, description="the same as task_id (the name Ximilar's current docs use)")
    version: int | None = Field(None, ge=1, description="a TRAINED version; default (or null): the production version")
    descriptor: Annotated[int, Field(ge=0, le=1)] | bool = Field(0, description="1: add _descriptor to records")
    store_images: bool | None = Field(
        None, description="true: keep each classified image as an unlabelled training image (_stored_image_id)"
    )
    records: list[dict[str, Any]] = Field(
        description=f"1 to {MAX_RECORDS} of {{'_url': ...}} or {{'_base64': ...}}; other fields come back as sent"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task_id": "5b3e7c9e-2f4e-4a43-9f0e-1c2d3e4f5a6b",
                    "records": [{"_url": "https://example.com/cat.jpg"}],
                }
            ]
        },
    )

    def chosen_task(self) -> str:
        if self.task_id and self.task and self.task_id != self.task:
            raise InvalidInput(f"'task_id' ({self.task_id}) and 'task' ({self.task}) name different tasks; send one")
        chosen = self.task_id or self.task
        if not chosen:
            raise InvalidInput("name the task: 'task_id' (or 'task')")
        return chosen


def _scores(found: list[dict[str, Any]] | None) -> list[LabelScore] | None:
    return [LabelScore(**score) for score in found] if found is not None else None


def _record_out(result: RecordResult) -> RecordOut:
    return RecordOut.model_validate(
        {
            **result.echo,
            "_status": Status(code=result.code, text=result.text),
            "best_label": LabelScore(**result.best_label) if result.best_label else None,
            "labels": _scores(result.labels),
            "best_labels": _scores(result.best_labels),
            "_width": result.width,
            "_height": result.height,
            "_descriptor": result.descriptor,
            "_stored_image_id": result.stored_image_id,
        }
    )


def classify_out(done: Classification) -> ClassifyOut:
    return ClassifyOut(
        task_id=done.task_id,
        version=done.version,
        status=Status(code=200, text="OK"),
        statistics=Statistics(processing_time=done.seconds),
        records=[_record_out(result) for result in done.records],
    )


@router.post(
    PATH,
    summary=f"Classify 1 to {MAX_RECORDS} images with a task's model",
    tags=["classify"],
    responses=responses(200, (400, 401, 404, 409, 503), error_model=ClassifyErrorOut),
)
def classify_images(body: ClassifyRequest) -> ClassifyOut:
    scope = RequestScope(router)
    command = ClassifyCommand(
        space=scope.space,
        task_id=body.chosen_task(),
        records=body.records,
        version=body.version,
        descriptor=bool(body.descriptor),
        store_images=bool(body.store_images),
    )
    return classify_out(classify(scope.ports, command))
