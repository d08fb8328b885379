"""store.labels: creation, changes, listings, and deletion that takes the label off everything."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kestrel.domain.entities import LabelType, TaskType, TrainingImage
from kestrel.domain.errors import InvalidInput, NotFound
from kestrel.ports.items import ItemStore
from kestrel.store import keys
from kestrel.store.images import get_image
from kestrel.store.keys import Space
from kestrel.store.labels import (
    create_label,
    delete_label,
    get_label,
    get_labels,
    list_labels,
    update_label,
)
from kestrel.store.paging import PageRequest
from kestrel.store.tasks import attach_label, create_task, get_task
from tests.unit.store.conftest import space_items

Upload = Callable[..., TrainingImage]
NewLabel = Callable[..., str]
ALL = PageRequest(page=1, page_size=100)


def test_create_label_stores_what_was_given(store: ItemStore, owner: Space) -> None:
    label = create_label(store, owner, "Cat", LabelType.CATEGORY, "furry", "cat_out")
    assert get_label(store, owner, label.id) == label
    assert (label.name, label.type, label.description, label.output_name) == ("Cat", "category", "furry", "cat_out")
    assert (label.images_count, label.task_ids, label.negative_for_task) == (0, {}, None)


def test_the_output_name_defaults_to_the_name(store: ItemStore, owner: Space) -> None:
    label = create_label(store, owner, "Dog", LabelType.TAG, "", "")
    assert get_label(store, owner, label.id).output_name == "Dog"


def test_labels_are_private_to_their_owner(store: ItemStore, owner: Space, other_owner: Space) -> None:
    label = create_label(store, owner, "Cat", LabelType.CATEGORY, "", "")
    with pytest.raises(NotFound, match=f"Label {label.id} not found"):
        get_label(store, other_owner, label.id)
    assert list_labels(store, other_owner, ALL, None, None).count == 0


def test_get_labels_keeps_the_order_asked_and_skips_unknown_ids(
    store: ItemStore, owner: Space, new_label: NewLabel
) -> None:
    a, b, c = new_label("a"), new_label("b"), new_label("c")
    assert [label.name for label in get_labels(store, owner, [c, "missing", a, b])] == ["c", "a", "b"]


def test_update_label_changes_the_fields_given(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    label_id = new_label("cat")
    updated = update_label(store, owner, label_id, {"name": "Kitten", "description": "small"})
    assert (updated.name, updated.description) == ("Kitten", "small")
    assert get_label(store, owner, label_id) == updated
    # The search name follows the name.
    assert list_labels(store, owner, ALL, "kitt", None).count == 1
    assert list_labels(store, owner, ALL, "cat", None).count == 0


def test_update_label_with_no_changes_returns_it_unchanged(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    label_id = new_label("cat")
    assert update_label(store, owner, label_id, {}) == get_label(store, owner, label_id)


def test_updating_an_unknown_label_is_not_found(store: ItemStore, owner: Space) -> None:
    with pytest.raises(NotFound, match="Label nope not found"):
        update_label(store, owner, "nope", {"name": "x"})
    with pytest.raises(NotFound, match="Label nope not found"):
        update_label(store, owner, "nope", {"type": "tag"})


def test_a_free_label_may_change_its_type(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    label_id = new_label("cat")
    assert update_label(store, owner, label_id, {"type": "tag"}).type == LabelType.TAG


def test_an_attached_label_keeps_its_type(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    label_id = new_label("cat")
    task = create_task(store, owner, "pets", "", TaskType.MULTI_CLASS)
    attach_label(store, owner, task.id, label_id)
    with pytest.raises(InvalidInput) as refused:
        update_label(store, owner, label_id, {"type": "tag"})
    assert refused.value.detail == "label 'cat' is attached to 1 task(s); detach it before changing its type"
    assert get_label(store, owner, label_id).type == LabelType.CATEGORY
    # Setting the type it already has is not a change.
    assert update_label(store, owner, label_id, {"type": "category", "name": "Cat"}).name == "Cat"


def test_an_unknown_label_type_is_refused(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    with pytest.raises(ValueError, match="'colour' is not a valid LabelType"):
        update_label(store, owner, new_label("cat"), {"type": "colour"})


def test_list_labels_newest_first_with_search(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    for name in ("Black cat", "Dog", "white CAT", "bird"):
        new_label(name)
    page = list_labels(store, owner, ALL, None, None)
    assert [item["name"] for item in page.items] == ["bird", "white CAT", "Dog", "Black cat"]
    assert page.count == 4
    found = list_labels(store, owner, ALL, "Cat", None)
    assert [item["name"] for item in found.items] == ["white CAT", "Black cat"]
    assert found.count == 2


def test_list_labels_of_a_task_lists_only_those(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    ids = [new_label(f"label {n}") for n in range(5)]
    chosen = [ids[3], ids[0], ids[4], "deleted-meanwhile"]
    page = list_labels(store, owner, PageRequest(page=1, page_size=2), None, chosen)
    assert [item["id"] for item in page.items] == [ids[4], ids[3]]
    assert page.count == 3
    rest = list_labels(store, owner, PageRequest(page=2, page_size=2, after=page.next_after), None, chosen)
    assert [item["id"] for item in rest.items] == [ids[0]]
    assert rest.next_after is None
    searched = list_labels(store, owner, ALL, "label 3", chosen)
    assert ([item["id"] for item in searched.items], searched.count) == ([ids[3]], 1)


def test_list_labels_pages_with_a_cursor(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    ids = [new_label(f"l{n}") for n in range(7)]
    first = list_labels(store, owner, PageRequest(page=1, page_size=3), None, None)
    second = list_labels(store, owner, PageRequest(page=2, page_size=3, after=first.next_after), None, None)
    third = list_labels(store, owner, PageRequest(page=3, page_size=3, after=second.next_after), None, None)
    listed = [item["id"] for page in (first, second, third) for item in page.items]
    assert listed == list(reversed(ids))
    assert third.next_after is None
    with pytest.raises(NotFound, match="page 4 is past the end"):
        list_labels(store, owner, PageRequest(page=4, page_size=3), None, None)


def test_delete_label_takes_it_off_every_image_and_task(
    store: ItemStore, owner: Space, new_label: NewLabel, upload: Upload
) -> None:
    cat, dog = new_label("cat"), new_label("dog")
    task = create_task(store, owner, "pets", "", TaskType.MULTI_CLASS)
    attach_label(store, owner, task.id, cat)
    attach_label(store, owner, task.id, dog)
    # More images than one deletion chunk (45), so the loop runs more than once.
    images = [upload([cat, dog] if n % 2 else [cat]) for n in range(50)]
    assert get_label(store, owner, cat).images_count == 50

    delete_label(store, owner, cat)

    with pytest.raises(NotFound):
        get_label(store, owner, cat)
    assert list(get_task(store, owner, task.id).label_ids) == [dog]
    assert all(cat not in get_image(store, owner, image.id).label_ids for image in images)
    assert not list(space_items(store, owner, keys.membership_ord_prefix(cat)))
    assert get_label(store, owner, dog).images_count == 25
    assert get_label(store, owner, dog).task_ids == {task.id: get_task(store, owner, task.id).label_ids[dog]}


def test_deleting_an_unknown_label_is_not_found(store: ItemStore, owner: Space) -> None:
    with pytest.raises(NotFound, match="Label nope not found"):
        delete_label(store, owner, "nope")


def test_a_negative_label_goes_only_with_its_task(store: ItemStore, owner: Space) -> None:
    task = create_task(store, owner, "tags", "", TaskType.MULTI_LABEL)
    assert task.negative_label_id is not None
    with pytest.raises(InvalidInput) as refused:
        delete_label(store, owner, task.negative_label_id)
    assert refused.value.detail == (
        f"label 'tags (negative)' is the negative label of task {task.id}; it goes when the task is deleted"
    )
    assert get_label(store, owner, task.negative_label_id).negative_for_task == task.id
