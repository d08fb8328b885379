"""Routes: task/ — create, list, read, change, delete; attach and detach labels; deploy versions."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kestrel.api.context import RequestScope
from kestrel.api.docs import responses
from kestrel.api.responses import ModelOut, TaskOut, TaskPage
from kestrel.api.schemas import LabelRef, TaskCreate, TaskUpdate
from kestrel.api.views import task_out, tasks_out
from kestrel.store import tasks
from kestrel.store.version_files import delete_model_files
from kestrel.usecases.train import request_training

router = APIGatewayRouter()
BASE = "/recognition/v2/task"


@router.get(BASE, summary="List tasks", tags=["tasks"], responses=responses())
def list_tasks(
    page: Annotated[int, Query(ge=1, description="1-based page number")] = 1,
    page_size: Annotated[int, Query(ge=1, description="items per page (max 1000)")] = 50,
    search: Annotated[str | None, Query(max_length=255, description="case-insensitive substring of the name")] = None,
    cursor: Annotated[str | None, Query(description="opaque position from a 'next' link")] = None,
) -> TaskPage:
    scope = RequestScope(router)
    found = tasks.list_tasks(scope.ports.items, scope.space, scope.page_request(page, page_size, cursor), search)
    results = tasks_out(scope, [tasks.task_from_item(item) for item in found.items])
    return TaskPage(**scope.page_links(found), results=results)


@router.post(BASE, summary="Create a task", tags=["tasks"], status_code=201, responses=responses(201))
def create_task(body: TaskCreate) -> TaskOut:
    scope = RequestScope(router)
    task = tasks.create_task(scope.ports.items, scope.space, body.name, body.description or "", body.type)
    return task_out(scope, task)


@router.get(f"{BASE}/<task_id>", summary="Get a task", tags=["tasks"], responses=responses())
def get_task(task_id: str) -> TaskOut:
    scope = RequestScope(router)
    return task_out(scope, tasks.get_task(scope.ports.items, scope.space, task_id))


def _change(task_id: str, body: TaskUpdate) -> TaskOut:
    scope = RequestScope(router)
    changes = body.model_dump(exclude_unset=True, exclude={"production_version"})
    # null clears a description; for every other field it means "leave as it is".
    changes = {
        name: ("" if value is None else value)
        for name, value in changes.items()
        if value is not None or name == "description"
    }
    task = tasks.update_task(scope.ports.items, scope.space, task_id, changes)
    if body.production_version is not None and body.production_version != task.production_version:
        task = tasks.set_production_version(scope.ports.items, scope.space, task_id, body.production_version)
    return task_out(scope, task)


@router.patch(
    f"{BASE}/<task_id>",
    summary="Change a task (name, description, deployed version)",
    tags=["tasks"],
    responses=responses(),
)
def patch_task(task_id: str, body: TaskUpdate) -> TaskOut:
    return _change(task_id, body)


@router.put(
    f"{BASE}/<task_id>",
    summary="Change a task (same fields as PATCH)",
    tags=["tasks"],
    responses=responses(),
)
def put_task(task_id: str, body: TaskUpdate) -> TaskOut:
    return _change(task_id, body)


@router.delete(
    f"{BASE}/<task_id>",
    summary="Delete a task and its models",
    tags=["tasks"],
    status_code=204,
    responses=responses(204),
)
def delete_task(task_id: str) -> Response[None]:
    scope = RequestScope(router)
    model_ids = tasks.delete_task(scope.ports.items, scope.space, task_id)
    delete_model_files(scope.ports.blobs, scope.owner_id, model_ids)
    return Response(status_code=204)


@router.post(
    f"{BASE}/<task_id>/add-label",
    summary="Attach a label to a task",
    tags=["tasks"],
    responses=responses(),
)
def add_label(task_id: str, body: LabelRef) -> TaskOut:
    scope = RequestScope(router)
    return task_out(scope, tasks.attach_label(scope.ports.items, scope.space, task_id, body.label_id))


@router.post(
    f"{BASE}/<task_id>/remove-label",
    summary="Detach a label from a task",
    tags=["tasks"],
    responses=responses(),
)
def remove_label(task_id: str, body: LabelRef) -> TaskOut:
    scope = RequestScope(router)
    return task_out(scope, tasks.detach_label(scope.ports.items, scope.space, task_id, body.label_id))


@router.post(
    f"{BASE}/<task_id>/train",
    summary="Train a new model version (answers at once; the version goes WAITING -> IN_TRAINING -> TRAINED)",
    tags=["training"],
    status_code=201,
    responses=responses(201, (400, 401, 404, 503)),
)
def train(task_id: str) -> ModelOut:
    scope = RequestScope(router)
    return ModelOut.of(request_training(scope.ports, scope.space, task_id))
