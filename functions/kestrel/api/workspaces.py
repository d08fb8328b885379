"""Routes: account/v2/workspace/ — list, create, rename and delete (when empty) workspaces.

Every task, label, training image and model belongs to one workspace of its owner; the
recognition routes take ``workspace`` (query or body) to choose it, default: the default one."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kestrel.api.context import RequestScope
from kestrel.api.docs import responses
from kestrel.api.responses import WorkspaceList, WorkspaceOut
from kestrel.api.schemas import WorkspaceCreate, WorkspaceUpdate
from kestrel.store import workspaces

router = APIGatewayRouter()
BASE = "/account/v2/workspace"


@router.get(BASE, summary="List workspaces (the default one first)", tags=["workspaces"], responses=responses())
def list_workspaces() -> WorkspaceList:
    scope = RequestScope(router)
    return WorkspaceList([WorkspaceOut.of(w) for w in workspaces.list_workspaces(scope.ports.items, scope.owner_id)])


@router.post(BASE, summary="Create a workspace", tags=["workspaces"], status_code=201, responses=responses(201))
def create_workspace(body: WorkspaceCreate) -> WorkspaceOut:
    scope = RequestScope(router)
    created = workspaces.create_workspace(scope.ports.items, scope.owner_id, body.name, body.description or "")
    return WorkspaceOut.of(created)


@router.get(f"{BASE}/<workspace_id>", summary="Get a workspace", tags=["workspaces"], responses=responses())
def get_workspace(workspace_id: str) -> WorkspaceOut:
    scope = RequestScope(router)
    return WorkspaceOut.of(workspaces.get_workspace(scope.ports.items, scope.owner_id, workspace_id))


def _change(workspace_id: str, body: WorkspaceUpdate) -> WorkspaceOut:
    scope = RequestScope(router)
    changed = workspaces.rename_workspace(scope.ports.items, scope.owner_id, workspace_id, body.name, body.description)
    return WorkspaceOut.of(changed)


@router.put(f"{BASE}/<workspace_id>", summary="Rename a workspace", tags=["workspaces"], responses=responses())
def put_workspace(workspace_id: str, body: WorkspaceUpdate) -> WorkspaceOut:
    return _change(workspace_id, body)


@router.patch(f"{BASE}/<workspace_id>", summary="Rename a workspace", tags=["workspaces"], responses=responses())
def patch_workspace(workspace_id: str, body: WorkspaceUpdate) -> WorkspaceOut:
    return _change(workspace_id, body)


@router.delete(
    f"{BASE}/<workspace_id>",
    summary="Delete an empty workspace (never the default one)",
    tags=["workspaces"],
    status_code=204,
    responses=responses(204, (400, 401, 404, 409)),
)
def delete_workspace(workspace_id: str) -> Response[None]:
    scope = RequestScope(router)
    workspaces.delete_workspace(scope.ports.items, scope.owner_id, workspace_id)
    return Response(status_code=204)
