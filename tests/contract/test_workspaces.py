"""Workspaces on both item stores (SQLite, DynamoDB under moto): each workspace's items live in
their own partition, the default one in the owner's (where data from before workspaces is),
and a workspace being deleted refuses new items."""

from __future__ import annotations

import pytest

from kestrel.domain.entities import LabelType, TaskType, default_workspace_id
from kestrel.domain.errors import Conflict, InvalidInput, NotFound
from kestrel.ports.items import ORD, PK, SK, ConditionFailed, ItemStore, Update
from kestrel.store import keys, workspaces
from kestrel.store.keys import Space
from kestrel.store.labels import create_label, get_label, list_labels
from kestrel.store.layout import upgrade_item
from kestrel.store.paging import PageRequest
from kestrel.store.tasks import create_task, get_task, list_tasks

OWNER = "owner-1"
FIRST_PAGE = PageRequest(page=1, page_size=50)


def test_the_default_workspace_exists_without_being_stored(items: ItemStore) -> None:
    [default] = workspaces.list_workspaces(items, OWNER)
    assert default.id == default_workspace_id(OWNER) and default.is_default and default.name == "Default"
    for given in (None, "", "Default", "default", default.id):
        assert workspaces.resolve_space(items, OWNER, given) == Space.default_of(OWNER)
    assert keys.space_pk(Space.default_of(OWNER)) == keys.owner_pk(OWNER)


def test_items_stored_before_workspaces_belong_to_the_default_one(items: ItemStore) -> None:
    # A task item as written before workspaces existed: no "workspace" attribute, in the owner's
    # partition (layout 1), re-keyed as every old item is (kestrel.store.layout).
    items.put(
        upgrade_item(
            {
                PK: keys.owner_pk(OWNER),
                SK: "T#t-old",
                ORD: keys.task_ord("2026-01-01T00:00:00.000000Z", "t-old"),
                "id": "t-old",
                "owner_id": OWNER,
                "name": "Old",
                "name_lc": "old",
                "type": "multi_class",
                "created": "2026-01-01T00:00:00.000000Z",
            }
        )
    )
    space = workspaces.resolve_space(items, OWNER, None)
    task = get_task(items, space, "t-old")
    assert task.workspace_id == default_workspace_id(OWNER)
    assert [item["id"] for item in list_tasks(items, space, FIRST_PAGE, None).items] == ["t-old"]


def test_workspaces_keep_their_items_apart(items: ItemStore) -> None:
    blue = workspaces.create_workspace(items, OWNER, "Blue")
    blue_space = workspaces.resolve_space(items, OWNER, blue.id)
    default = Space.default_of(OWNER)
    task = create_task(items, blue_space, "Blue task", "", TaskType.MULTI_LABEL)  # + its negative label
    label = create_label(items, default, "sky", LabelType.CATEGORY, "", "")

    assert task.workspace_id == blue.id and get_task(items, blue_space, task.id).workspace_id == blue.id
    with pytest.raises(NotFound):
        get_task(items, default, task.id)
    with pytest.raises(NotFound):
        get_label(items, blue_space, label.id)
    assert list_tasks(items, default, FIRST_PAGE, None).count == 0
    assert [item["name"] for item in list_labels(items, blue_space, FIRST_PAGE, None, None).items] == [
        "Blue task (negative)"
    ]
    assert [item["name"] for item in list_labels(items, default, FIRST_PAGE, None, None).items] == ["sky"]


def test_another_owners_workspace_is_not_found(items: ItemStore) -> None:
    theirs = workspaces.create_workspace(items, "owner-2", "Theirs")
    with pytest.raises(NotFound):
        workspaces.resolve_space(items, OWNER, theirs.id)
    assert [w.name for w in workspaces.list_workspaces(items, OWNER)] == ["Default"]


def test_rename_and_delete_when_empty(items: ItemStore) -> None:
    shelves = workspaces.create_workspace(items, OWNER, "Shelves")
    renamed = workspaces.rename_workspace(items, OWNER, shelves.id, "Aisles", "the store")
    assert (renamed.name, renamed.description) == ("Aisles", "the store")
    default = workspaces.rename_workspace(items, OWNER, default_workspace_id(OWNER), "Main", None)
    assert default.is_default and default.name == "Main"
    assert [w.name for w in workspaces.list_workspaces(items, OWNER)] == ["Main", "Aisles"]

    space = Space(OWNER, shelves.id)
    task = create_task(items, space, "In use", "", TaskType.MULTI_CLASS)
    with pytest.raises(Conflict, match=r"task\(s\)"):
        workspaces.delete_workspace(items, OWNER, shelves.id)
    # A refused delete leaves the workspace usable.
    create_label(items, space, "still works", LabelType.CATEGORY, "", "")
    assert get_task(items, space, task.id).name == "In use"
    with pytest.raises(InvalidInput, match="default workspace"):
        workspaces.delete_workspace(items, OWNER, default_workspace_id(OWNER))


def test_an_empty_workspace_goes_and_its_id_is_then_unknown(items: ItemStore) -> None:
    empty = workspaces.create_workspace(items, OWNER, "Empty")
    workspaces.delete_workspace(items, OWNER, empty.id)
    with pytest.raises(NotFound):
        workspaces.resolve_space(items, OWNER, empty.id)
    with pytest.raises(NotFound):
        workspaces.delete_workspace(items, OWNER, empty.id)


def test_a_workspace_being_deleted_refuses_new_items(items: ItemStore) -> None:
    """The guard every create carries: a create that comes after the delete's mark fails whole."""
    closing = workspaces.create_workspace(items, OWNER, "Closing")
    space = Space(OWNER, closing.id)
    items.update(
        Update(keys.workspace_key(OWNER, closing.id), set={"state": workspaces.DELETING})
    )  # the delete's first step
    with pytest.raises(NotFound, match="deleted meanwhile"):
        create_task(items, space, "Late", "", TaskType.MULTI_LABEL)
    with pytest.raises(NotFound, match="deleted meanwhile"):
        create_label(items, space, "late", LabelType.TAG, "", "")
    for listed in (keys.task_list(space), keys.label_list(space)):  # nothing half-written
        assert next(iter(items.query(listed, index="ord")), None) is None
    with pytest.raises(ConditionFailed):
        items.transact(workspaces.create_guard(space))
