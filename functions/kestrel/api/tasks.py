"""Routes: task/ — create, list, read, change, delete; attach and detach labels; deploy versions."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kestrel.api.context import RequestScope
from kestrel.api.docs import responses
from kestrel.api.render import model_json, task_json, tasks_json
from kestrel.api.schemas import LabelRef, ModelOut, TaskCreate, TaskOut, TaskPage, TaskUpdate
from kestrel.ports.errors import Unavailable
from kestrel.ports.jobs import TrainRequest
from kestrel.store import lifecycle, tasks
from kestrel.store.version_files import delete_model_files

router = APIGatewayRouter()
BASE = "/recognition/v2/task"


@router.get(BASE, summary="List tasks", tags=["tasks"], responses=responses(TaskPage))
def list_tasks(
    page: Annotated[int, Query(ge=1, description="1-based page number")] = 1,
    page_size: Annotated[int, Query(ge=1, description="items per page (max 1000)")] = 50,
    search: Annotated[str | None, Query(max_length=255, description="case-insensitive substring of the name")] = None,
    cursor: Annotated[str | None, Query(description="opaque position from a 'next' link")] = None,
) -> dict[str, Any]:
    scope = RequestScope(router)
    found = tasks.list_tasks(scope.ports.items, scope.space, scope.page_request(page, page_size, cursor), search)
    return scope.page_body(found, lambda items: tasks_json(scope.ports, scope.space, items))


@router.post(BASE, summary="Create a task", tags=["tasks"], status_code=201, responses=responses(TaskOut, 201))
def create_task(body: TaskCreate) -> dict[str, Any]:
    scope = RequestScope(router)
    task = tasks.create_task(scope.ports.items, scope.space, body.name, body.description or "", body.type)
    return task_json(scope.ports, task)


@router.get(f"{BASE}/<task_id>", summary="Get a task", tags=["tasks"], responses=responses(TaskOut))
def get_task(task_id: str) -> dict[str, Any]:
    scope = RequestScope(router)
    return task_json(scope.ports, tasks.get_task(scope.ports.items, scope.space, task_id))


def _change(task_id: str, body: TaskUpdate) -> dict[str, Any]:
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
    return task_json(scope.ports, task)


@router.patch(
    f"{BASE}/<task_id>",
    summary="Change a task (name, description, deployed version)",
    tags=["tasks"],
    responses=responses(TaskOut),
)
def patch_task(task_id: str, body: TaskUpdate) -> dict[str, Any]:
    return _change(task_id, body)


@router.put(
    f"{BASE}/<task_id>",
    summary="Change a task (same fields as PATCH)",
    tags=["tasks"],
    responses=responses(TaskOut),
)
def put_task(task_id: str, body: TaskUpdate) -> dict[str, Any]:
    return _change(task_id, body)


@router.delete(
    f"{BASE}/<task_id>",
    summary="Delete a task and its models",
    tags=["tasks"],
    status_code=204,
    responses=responses(None, 204),
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
    responses=responses(TaskOut),
)
def add_label(task_id: str, body: LabelRef) -> dict[str, Any]:
    scope = RequestScope(router)
    return task_json(scope.ports, tasks.attach_label(scope.ports.items, scope.space, task_id, body.label_id))


@router.post(
    f"{BASE}/<task_id>/remove-label",
    summary="Detach a label from a task",
    tags=["tasks"],
    responses=responses(TaskOut),
)
def remove_label(task_id: str, body: LabelRef) -> dict[str, Any]:
    scope = RequestScope(router)
    return task_json(scope.ports, tasks.detach_label(scope.ports.items, scope.space, task_id, body.label_id))


@router.post(
    f"{BASE}/<task_id>/train",
    summary="Train a new model version (answers at once; the version goes Waiting -> Training -> Trained)",
    tags=["training"],
    status_code=201,
    responses=responses(ModelOut, 201, (400, 401, 404, 503)),
)
def train(task_id: str) -> dict[str, Any]:
    scope = RequestScope(router)
    model = lifecycle.create_version(scope.ports.items, scope.space, task_id)
    request = TrainRequest(
        owner_id=scope.owner_id,
        task_id=task_id,
        model_id=model.id,
        version=model.version,
        workspace_id=scope.space.workspace_id,
    )
    try:
        scope.ports.queue.send(request)
    except Exception as error:
        # Never leave a version Waiting for a request that was not queued: nothing would ever
        # launch it. (Should the message have been queued after all, the launcher skips a
        # version that is no longer Waiting.)
        ref = lifecycle.JobRef(scope.space, task_id, model.id)
        lifecycle.mark_failed(scope.ports.items, ref, "the train request could not be queued", mail=False)
        if isinstance(error, Unavailable):
            raise Unavailable(
                error.what,
                f"version {model.version} not queued: {error.reason}",
                error.retry_after,
                detail=f"the train request could not be queued (version {model.version} is marked Failed); "
                f"request training again in {error.retry_after} seconds",
            ) from error
        raise
    return model_json(model)
