"""Routes: label/ — create, list (by task, by name), read, change, delete."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kestrel.api.context import RequestScope
from kestrel.api.docs import responses
from kestrel.api.responses import LabelOut, LabelPage
from kestrel.api.schemas import LabelCreate, LabelUpdate
from kestrel.api.views import labels_out
from kestrel.store import images, labels
from kestrel.store.tasks import get_task

router = APIGatewayRouter()
BASE = "/recognition/v2/label"


@router.get(BASE, summary="List labels", tags=["labels"], responses=responses())
def list_labels(
    page: Annotated[int, Query(ge=1, description="1-based page number")] = 1,
    page_size: Annotated[int, Query(ge=1, description="items per page (max 1000)")] = 50,
    search: Annotated[str | None, Query(max_length=255, description="case-insensitive substring of the name")] = None,
    task: Annotated[str | None, Query(description="only the labels of this task")] = None,
    cursor: Annotated[str | None, Query(description="opaque position from a 'next' link")] = None,
) -> LabelPage:
    scope = RequestScope(router)
    store = scope.ports.items
    task_label_ids = list(get_task(store, scope.space, task).label_ids) if task else None
    found = labels.list_labels(store, scope.space, scope.page_request(page, page_size, cursor), search, task_label_ids)
    results = labels_out([labels.label_from_item(item) for item in found.items])
    return LabelPage(**scope.page_links(found), results=results)


@router.post(BASE, summary="Create a label", tags=["labels"], status_code=201, responses=responses(201))
def create_label(body: LabelCreate) -> LabelOut:
    scope = RequestScope(router)
    label = labels.create_label(
        scope.ports.items,
        scope.space,
        body.name,
        body.type,
        body.description or "",
        body.output_name or "",
    )
    return LabelOut.of(label)


@router.get(f"{BASE}/<label_id>", summary="Get a label", tags=["labels"], responses=responses())
def get_label(label_id: str) -> LabelOut:
    scope = RequestScope(router)
    return LabelOut.of(labels.get_label(scope.ports.items, scope.space, label_id))


def _change(label_id: str, body: LabelUpdate) -> LabelOut:
    scope = RequestScope(router)
    changes = {name: value for name, value in body.model_dump(exclude_unset=True).items() if value is not None}
    return LabelOut.of(labels.update_label(scope.ports.items, scope.space, label_id, changes))


@router.put(f"{BASE}/<label_id>", summary="Change a label", tags=["labels"], responses=responses())
def put_label(label_id: str, body: LabelUpdate) -> LabelOut:
    return _change(label_id, body)


@router.patch(f"{BASE}/<label_id>", summary="Change a label", tags=["labels"], responses=responses())
def patch_label(label_id: str, body: LabelUpdate) -> LabelOut:
    return _change(label_id, body)


@router.delete(
    f"{BASE}/<label_id>",
    summary="Delete a label (images keep their other labels)",
    tags=["labels"],
    status_code=204,
    responses=responses(204),
)
def delete_label(label_id: str) -> Response[None]:
    scope = RequestScope(router)
    labels.delete_label(scope.ports.items, scope.space, label_id)
    return Response(status_code=204)


@router.delete(
    f"{BASE}/<label_id>/wipe",
    summary="Delete a label and every training image that carries it (also those with other labels)",
    tags=["labels"],
    status_code=204,
    responses=responses(204, (400, 401, 404, 409)),
)
def wipe_label(label_id: str) -> Response[None]:
    scope = RequestScope(router)
    images.wipe_label(scope.ports.items, scope.ports.blobs, scope.space, label_id)
    return Response(status_code=204)
