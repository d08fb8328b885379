"""Workspaces: separate sets of tasks, labels, images and models of one owner.

Every owner has a default workspace that needs no stored item (its id derives from the owner's,
see ``default_workspace_id``); an item at ``W#<id>`` in the owner's partition records a name
given to it. Every other workspace is such an item, and every key and list of its contents
starts with its own prefix (``keys.space_pk``), so nothing can be read or listed across
workspaces.

A workspace is deleted only when empty. Deleting first marks it ``deleting``; every write that
creates something in a workspace carries a guard that the workspace is still ``active``. So a
create either lands before the mark (and the emptiness check then sees it) or fails. The check
reads the workspace's lists, which on DynamoDB may lag a create by the index's propagation
delay (typically under a second; docs/architecture.md, "Partition design")."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from kestrel.domain.entities import (
    DEFAULT_WORKSPACE_NAME,
    ID_PATTERN,
    Workspace,
    default_workspace_id,
    new_id,
    now_iso,
)
from kestrel.domain.errors import Conflict, InvalidInput, NotFound
from kestrel.ports.items import ORD, PK, SK, Condition, ConditionFailed, Delete, Item, ItemStore, Update, Write
from kestrel.store import keys
from kestrel.store.keys import Space

WORKSPACE_PREFIX = "W#"
_ID = re.compile(ID_PATTERN)
#: Workspaces an owner may create besides the default one (checked before each create).
MAX_WORKSPACES = 100
ACTIVE = "active"
DELETING = "deleting"
#: What a workspace may hold, by list: it is empty when none of these lists has an item.
_CONTENTS: dict[str, Callable[[Space], list[str]]] = {
    "task(s)": lambda space: [keys.task_list(space)],
    "label(s)": lambda space: [keys.label_list(space)],
    "training image(s)": keys.image_lists,
    "model version(s)": lambda space: [keys.model_list(space)],
}


def _default_workspace(owner_id: str) -> Workspace:
    return Workspace(
        id=default_workspace_id(owner_id), owner_id=owner_id, name=DEFAULT_WORKSPACE_NAME, description="", created=""
    )


def _from_item(item: Item) -> Workspace:
    return Workspace(
        id=str(item["id"]),
        owner_id=str(item["owner_id"]),
        name=str(item["name"]),
        description=str(item.get("description") or ""),
        created=str(item.get("created") or ""),
    )


def get_workspace(store: ItemStore, owner_id: str, workspace_id: str) -> Workspace:
    if not _ID.match(workspace_id):  # never a key lookup with whatever text came in
        raise NotFound(f"Workspace {workspace_id[:80]!r} not found: a workspace is named by its id (a UUID)")
    item = store.get(keys.workspace_key(owner_id, workspace_id))
    if item is not None:
        return _from_item(item)
    if workspace_id == default_workspace_id(owner_id):
        return _default_workspace(owner_id)
    raise NotFound(f"Workspace {workspace_id} not found; GET account/v2/workspace/ lists yours")


def list_workspaces(store: ItemStore, owner_id: str) -> list[Workspace]:
    """The default workspace first, then the others, oldest first."""
    default_id = default_workspace_id(owner_id)
    # At most MAX_WORKSPACES items in the owner's partition: read by key order (strongly
    # consistent), ordered by creation here.
    found = sorted(store.query(keys.owner_pk(owner_id), WORKSPACE_PREFIX), key=lambda item: str(item.get(ORD, "")))
    stored = [_from_item(item) for item in found]
    default = next((w for w in stored if w.id == default_id), _default_workspace(owner_id))
    return [default, *(w for w in stored if w.id != default_id)]


def resolve_space(store: ItemStore, owner_id: str, workspace: str | None) -> Space:
    """The space a request addresses: no workspace, "Default" (the ximilar client's name for it)
    or the default workspace's id mean the default one; any other id must be a workspace of
    this owner (another owner's workspace is not found, as if it did not exist)."""
    if workspace is None or not workspace.strip() or workspace.strip().lower() == DEFAULT_WORKSPACE_NAME.lower():
        return Space.default_of(owner_id)
    found = get_workspace(store, owner_id, workspace.strip())
    return Space(owner_id, found.id)


def spaces_of(store: ItemStore, owner_id: str) -> Iterator[Space]:
    """Every space of the owner (for operators' sweeps such as re-queueing waiting versions)."""
    for workspace in list_workspaces(store, owner_id):
        yield Space(owner_id, workspace.id)


def create_guard(space: Space) -> list[Write]:
    """The write that makes a create in ``space`` fail if the workspace is being deleted (none
    for the default workspace, which is never deleted). Put it last in the transaction."""
    if space.is_default:
        return []
    return [
        Update(
            keys.workspace_key(space.owner_id, space.workspace_id),
            set={"state": ACTIVE},
            condition=Condition(equals={"state": ACTIVE}),
        )
    ]


def guard_failed(space: Space, writes: list[Write], failed: ConditionFailed) -> bool:
    """Whether ``failed`` (from ``writes`` ending with ``create_guard(space)``) is the guard's."""
    return not space.is_default and failed.index == len(writes) - 1


def workspace_gone(space: Space) -> NotFound:
    return NotFound(f"Workspace {space.workspace_id} was deleted meanwhile; nothing was created in it")


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("'name' must not be empty")
    return name


def create_workspace(store: ItemStore, owner_id: str, name: str, description: str = "") -> Workspace:
    existing = sum(1 for _ in store.query(keys.owner_pk(owner_id), WORKSPACE_PREFIX))
    if existing >= MAX_WORKSPACES:
        raise InvalidInput(f"an account has at most {MAX_WORKSPACES} workspaces; delete an empty one first")
    workspace = Workspace(
        id=new_id(), owner_id=owner_id, name=_check_name(name), description=description, created=now_iso()
    )
    store.put(_item(workspace), Condition(exists=False))
    return workspace


def _item(workspace: Workspace) -> Item:
    pk, sk = keys.workspace_key(workspace.owner_id, workspace.id)
    return {
        PK: pk,
        SK: sk,
        ORD: keys.workspace_ord(workspace.created, workspace.id),
        "id": workspace.id,
        "owner_id": workspace.owner_id,
        "name": workspace.name,
        "description": workspace.description,
        "created": workspace.created,
        "state": ACTIVE,
    }


def rename_workspace(
    store: ItemStore, owner_id: str, workspace_id: str, name: str | None, description: str | None
) -> Workspace:
    current = get_workspace(store, owner_id, workspace_id)
    changes: dict[str, str] = {}
    if name is not None:
        changes["name"] = _check_name(name)
    if description is not None:
        changes["description"] = description
    if not changes:
        return current
    if current.is_default and store.get(keys.workspace_key(owner_id, workspace_id)) is None:
        # The default workspace gets its item when first renamed.
        renamed = Workspace(**{**current.__dict__, **changes})
        renamed.created = renamed.created or now_iso()
        store.put(_item(renamed))
        return renamed
    try:
        item = store.update(
            Update(keys.workspace_key(owner_id, workspace_id), set=changes, condition=Condition(exists=True))
        )
    except ConditionFailed:
        raise NotFound(f"Workspace {workspace_id} not found") from None
    return _from_item(item)


def _contents(store: ItemStore, space: Space) -> list[str]:
    return [
        what
        for what, lists in _CONTENTS.items()
        if any(next(iter(store.query(pk, index="ord", limit=1)), None) for pk in lists(space))
    ]


def delete_workspace(store: ItemStore, owner_id: str, workspace_id: str) -> None:
    """Delete an empty workspace (never the default one)."""
    workspace = get_workspace(store, owner_id, workspace_id)
    if workspace.is_default:
        raise InvalidInput("the default workspace cannot be deleted; it holds what requests without 'workspace' use")
    key = keys.workspace_key(owner_id, workspace_id)
    try:
        store.update(Update(key, set={"state": DELETING}, condition=Condition(exists=True)))
    except ConditionFailed:
        raise NotFound(f"Workspace {workspace_id} not found") from None
    held = _contents(store, Space(owner_id, workspace_id))
    if held:
        store.update(Update(key, set={"state": ACTIVE}, condition=Condition(exists=True)))
        raise Conflict(
            f"workspace '{workspace.name}' is not empty: it still has {', '.join(held)}; "
            "delete them first (tasks, then labels and images)"
        )
    store.transact([Delete(key)])
