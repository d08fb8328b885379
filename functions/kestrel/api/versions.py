"""Routes: model/ — the trained versions of tasks."""

from __future__ import annotations

import json
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kestrel.api.context import RequestScope
from kestrel.api.docs import responses
from kestrel.api.responses import ModelCardOut, ModelDownloadOut, ModelOut, ModelPage
from kestrel.api.views import model_out, models_out
from kestrel.domain.entities import Model, TrainStatus
from kestrel.domain.errors import InvalidInput
from kestrel.store import lifecycle, versions
from kestrel.store.tasks import get_task
from kestrel.store.version_files import CARD_FILE, MODEL_FILE, delete_model_files, model_prefix

router = APIGatewayRouter()
BASE = "/recognition/v2/model"


@router.get(BASE, summary="List model versions", tags=["models"], responses=responses())
def list_models(
    page: Annotated[int, Query(ge=1, description="1-based page number")] = 1,
    page_size: Annotated[int, Query(ge=1, description="items per page (max 1000)")] = 50,
    task: Annotated[str | None, Query(description="only the versions of this task")] = None,
    cursor: Annotated[str | None, Query(description="opaque position from a 'next' link")] = None,
) -> ModelPage:
    scope = RequestScope(router)
    if task:
        get_task(scope.ports.items, scope.space, task)
    found = versions.list_models(scope.ports.items, scope.space, scope.page_request(page, page_size, cursor), task)
    results = models_out([versions.model_from_item(item) for item in found.items])
    return ModelPage(**scope.page_links(found), results=results)


@router.get(f"{BASE}/<model_id>", summary="Get a model version", tags=["models"], responses=responses())
def get_model(model_id: str) -> ModelOut:
    scope = RequestScope(router)
    return model_out(scope, versions.get_model(scope.ports.items, scope.space, model_id))


def _trained(scope: RequestScope, model_id: str) -> Model:
    model = versions.get_model(scope.ports.items, scope.space, model_id)
    if model.train_status != TrainStatus.TRAINED:
        raise InvalidInput(f"version {model.version} is {model.train_status.value}; only a TRAINED version has files")
    return model


@router.get(
    f"{BASE}/<model_id>/card",
    summary="The full model card of a trained version (every misclassified test image)",
    description="The model JSON's `metrics` keeps at most the first 100 misclassified test images "
    "(`misclassified_total` says how many there are, `truncated` whether anything was left out); "
    "this answers the whole card.",
    tags=["models"],
    responses=responses(200, (400, 401, 404)),
)
def get_model_card(model_id: str) -> ModelCardOut:
    scope = RequestScope(router)
    model = _trained(scope, model_id)
    return ModelCardOut.model_validate_json(scope.ports.blobs.get(model_prefix(scope.owner_id, model.id) + CARD_FILE))


@router.get(
    f"{BASE}/<model_id>/download",
    summary="Export a trained version: its ONNX file (the one classify runs) and its card",
    tags=["models"],
    responses=responses(200, (400, 401, 404)),
)
def download_model(model_id: str) -> ModelDownloadOut:
    scope = RequestScope(router)
    model = _trained(scope, model_id)
    prefix = model_prefix(scope.owner_id, model.id)
    ttl = scope.ports.settings.limits.url_ttl_seconds
    card = json.loads(scope.ports.blobs.get(prefix + CARD_FILE))
    return ModelDownloadOut(
        id=model.id,
        version=model.version,
        model_url=scope.ports.blobs.download_url(prefix + MODEL_FILE, ttl, scope.root_url),
        card_url=scope.ports.blobs.download_url(prefix + CARD_FILE, ttl, scope.root_url),
        expires_in=ttl,
        card=card,
    )


@router.delete(
    f"{BASE}/<model_id>",
    summary="Delete a model version that is not deployed",
    tags=["models"],
    status_code=204,
    responses=responses(204, (401, 404, 409)),
)
def delete_model(model_id: str) -> Response[None]:
    scope = RequestScope(router)
    model = lifecycle.delete_model(scope.ports.items, scope.space, model_id)
    delete_model_files(scope.ports.blobs, scope.owner_id, [model.id])
    return Response(status_code=204)
