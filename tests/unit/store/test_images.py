"""store.images: uploads (limits, duplicates, nothing half-stored), labels with their counters in
the same transaction, metadata, listings with filters, deletion of the item, its marks and files."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kestrel.adapters.sqlite_items import SqliteItemStore
from kestrel.domain.entities import TrainingImage
from kestrel.domain.errors import Conflict, InvalidInput, NotFound, TooLarge
from kestrel.ports.blobs import BlobStore
from kestrel.ports.items import SK, ItemStore
from kestrel.store import keys
from kestrel.store.images import (
    ImageFilter,
    add_label_to_image,
    delete_image,
    duplicate_detail,
    get_image,
    image_blob,
    image_ids_with_labels,
    list_images,
    remove_label_from_image,
    thumb_blob,
    update_image,
)
from kestrel.store.keys import Space
from kestrel.store.labels import delete_label, get_label
from kestrel.store.paging import Page, PageRequest
from kestrel.usecases.uploads import UploadLimits, upload_image
from tests.unit.store.conftest import space_items

Upload = Callable[..., TrainingImage]
NewLabel = Callable[..., str]
Racing = Callable[..., SqliteItemStore]
LIMITS = UploadLimits(max_bytes=1_000_000, max_pixels=10_000_000)
ALL = PageRequest(page=1, page_size=100)


def _memberships(store: ItemStore, owner: Space, label_id: str) -> list[str]:
    return [str(item["image_id"]) for item in space_items(store, owner, keys.membership_ord_prefix(label_id))]


def _stored_keys(store: ItemStore, owner: Space) -> list[str]:
    return sorted(str(item[SK]) for item in space_items(store, owner))


def test_an_upload_stores_the_bytes_a_thumbnail_and_the_record(
    store: ItemStore, blobs: BlobStore, owner: Space, upload: Upload, photo: Callable[[], bytes]
) -> None:
    data = photo()
    image = upload(data=data, meta_data={"camera": "x100"}, test_image=True, noresize=True)
    assert get_image(store, owner, image.id) == image
    assert (image.format, image.width, image.height, image.size_bytes) == ("PNG", 8, 8, len(data))
    assert (image.meta_data, image.test_image, image.noresize, image.label_ids) == ({"camera": "x100"}, True, True, {})
    assert blobs.get(image_blob(image)) == data
    assert blobs.get(thumb_blob(image))[:3] == b"\xff\xd8\xff"  # a JPEG
    marker = store.get(keys.content_key(owner, image.content_hash))
    assert marker is not None and marker["image_id"] == image.id


def test_an_upload_with_labels_counts_them_in_the_same_write(
    store: ItemStore, owner: Space, upload: Upload, new_label: NewLabel
) -> None:
    cat, dog = new_label("cat"), new_label("dog")
    image = upload([cat, dog, cat])  # a label given twice counts once
    assert set(image.label_ids) == {cat, dog}
    assert get_label(store, owner, cat).images_count == 1
    assert get_label(store, owner, dog).images_count == 1
    assert _memberships(store, owner, cat) == [image.id]


def test_an_upload_over_the_size_limit_is_refused_with_the_sizes(
    store: ItemStore, blobs: BlobStore, owner: Space, photo: Callable[[], bytes]
) -> None:
    data = photo()
    limits = UploadLimits(max_bytes=len(data) - 1, max_pixels=1000)
    with pytest.raises(TooLarge) as refused:
        upload_image(store, blobs, owner, data, limits)
    assert refused.value.detail == (
        f"the image is {len(data):,} bytes, over the limit of {len(data) - 1:,} bytes; compress or scale it down"
    )
    assert _stored_keys(store, owner) == []
    assert list(blobs.list_keys("")) == []


def test_an_upload_over_the_pixel_limit_is_refused(
    store: ItemStore, blobs: BlobStore, owner: Space, photo: Callable[[], bytes]
) -> None:
    with pytest.raises(InvalidInput, match=r"^not a usable image: the image is 8x8 = 64 pixels, over the limit of 63"):
        upload_image(store, blobs, owner, photo(), UploadLimits(max_bytes=10**6, max_pixels=63))
    assert list(blobs.list_keys("")) == []


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", r"the file is empty \(0 bytes\); send the image's bytes"),
        (b"plain text, not a picture", r"the data is not an image in a supported format \(JPEG, PNG"),
    ],
    ids=["empty", "text"],
)
def test_what_is_not_an_image_is_refused_and_nothing_is_stored(
    store: ItemStore, blobs: BlobStore, owner: Space, upload: Upload, data: bytes, why: str
) -> None:
    with pytest.raises(InvalidInput, match=f"^not a usable image: {why}"):
        upload(data=data)
    assert _stored_keys(store, owner) == []
    assert list(blobs.list_keys("")) == []


def test_the_same_bytes_twice_are_a_conflict_naming_the_first_image(
    store: ItemStore, blobs: BlobStore, owner: Space, upload: Upload, photo: Callable[[], bytes]
) -> None:
    data = photo()
    first = upload(data=data)
    with pytest.raises(Conflict) as refused:
        upload(data=data)
    assert refused.value.detail == duplicate_detail(first.id)
    assert refused.value.detail == (
        f"Training image ID: {first.id} already exists (the same bytes were uploaded before)"
    )
    assert list_images(store, owner, ALL, ImageFilter()).count == 1
    assert len(list(blobs.list_keys("images/"))) == 2  # the first image's original and thumbnail


def test_another_owner_may_upload_the_same_bytes(
    store: ItemStore, blobs: BlobStore, owner: Space, other_owner: Space, upload: Upload, photo: Callable[[], bytes]
) -> None:
    data = photo()
    mine = upload(data=data)
    theirs = upload_image(store, blobs, other_owner, data, UploadLimits(10**6, 10**6))
    assert mine.id != theirs.id
    with pytest.raises(NotFound, match=f"Training image {mine.id} not found"):
        get_image(store, other_owner, mine.id)


def test_an_upload_with_an_unknown_label_stores_nothing(
    store: ItemStore, blobs: BlobStore, owner: Space, upload: Upload, new_label: NewLabel
) -> None:
    cat = new_label("cat")
    with pytest.raises(NotFound, match="Label nope not found"):
        upload([cat, "nope"])
    assert get_label(store, owner, cat).images_count == 0
    assert _memberships(store, owner, cat) == []
    assert list(blobs.list_keys("")) == []
    assert list_images(store, owner, ALL, ImageFilter()).count == 0


def test_add_label_to_image_counts_once(store: ItemStore, owner: Space, upload: Upload, new_label: NewLabel) -> None:
    image = upload()
    cat = new_label("cat")
    labelled = add_label_to_image(store, owner, image.id, cat)
    assert list(labelled.label_ids) == [cat]
    assert add_label_to_image(store, owner, image.id, cat) == labelled  # again: no change
    assert get_label(store, owner, cat).images_count == 1
    assert _memberships(store, owner, cat) == [image.id]


def test_labelling_unknown_things_is_not_found(
    store: ItemStore, owner: Space, upload: Upload, new_label: NewLabel
) -> None:
    image = upload()
    with pytest.raises(NotFound, match="Label nope not found"):
        add_label_to_image(store, owner, image.id, "nope")
    with pytest.raises(NotFound, match="Training image nope not found"):
        add_label_to_image(store, owner, "nope", new_label("cat"))


def test_remove_label_from_image_uncounts_it(
    store: ItemStore, owner: Space, upload: Upload, new_label: NewLabel
) -> None:
    cat, dog = new_label("cat"), new_label("dog")
    image = upload([cat, dog])
    after = remove_label_from_image(store, owner, image.id, cat)
    assert list(after.label_ids) == [dog]
    assert get_label(store, owner, cat).images_count == 0
    assert get_label(store, owner, dog).images_count == 1
    assert _memberships(store, owner, cat) == []


def test_removing_a_label_the_image_does_not_have_is_refused(
    store: ItemStore, owner: Space, upload: Upload, new_label: NewLabel
) -> None:
    image = upload()
    cat = new_label("cat")
    with pytest.raises(InvalidInput) as refused:
        remove_label_from_image(store, owner, image.id, cat)
    assert refused.value.detail == f"image {image.id} does not have label {cat}"
    with pytest.raises(NotFound, match="Label nope not found"):
        remove_label_from_image(store, owner, image.id, "nope")
    assert get_label(store, owner, cat).images_count == 0


def test_update_image_sets_the_fields_given(store: ItemStore, owner: Space, upload: Upload) -> None:
    image = upload()
    updated = update_image(store, owner, image.id, {"meta_data": {"a": [1, 2]}, "test_image": True})
    assert (updated.meta_data, updated.test_image) == ({"a": [1, 2]}, True)
    assert get_image(store, owner, image.id) == updated
    with pytest.raises(NotFound, match="Training image nope not found"):
        update_image(store, owner, "nope", {"test_image": True})


def test_delete_image_removes_record_marks_counts_and_files(
    store: ItemStore, blobs: BlobStore, owner: Space, upload: Upload, new_label: NewLabel, photo: Callable[[], bytes]
) -> None:
    cat, dog = new_label("cat"), new_label("dog")
    data = photo()
    image = upload([cat, dog], data=data)
    kept = upload([cat])

    delete_image(store, blobs, owner, image.id)

    with pytest.raises(NotFound):
        get_image(store, owner, image.id)
    assert store.get(keys.content_key(owner, image.content_hash)) is None
    assert _memberships(store, owner, cat) == [kept.id]
    assert _memberships(store, owner, dog) == []
    assert (get_label(store, owner, cat).images_count, get_label(store, owner, dog).images_count) == (1, 0)
    assert not blobs.exists(image_blob(image))
    assert not blobs.exists(thumb_blob(image))
    assert blobs.exists(image_blob(kept))
    assert upload(data=data).id != image.id  # the same bytes may come back


def test_deleting_an_unknown_image_is_not_found(store: ItemStore, blobs: BlobStore, owner: Space) -> None:
    with pytest.raises(NotFound, match="Training image nope not found"):
        delete_image(store, blobs, owner, "nope")


def _ids(page: Page) -> list[str]:
    return [str(item["id"]) for item in page.items]


def test_list_images_newest_first_in_pages(store: ItemStore, owner: Space, upload: Upload) -> None:
    images = [upload() for _ in range(5)]
    first = list_images(store, owner, PageRequest(page=1, page_size=2), ImageFilter())
    assert (_ids(first), first.count) == ([images[4].id, images[3].id], 5)
    second = list_images(store, owner, PageRequest(page=2, page_size=2, after=first.next_after), ImageFilter())
    third = list_images(store, owner, PageRequest(page=3, page_size=2, after=second.next_after), ImageFilter())
    assert _ids(second) + _ids(third) == [images[2].id, images[1].id, images[0].id]
    assert third.next_after is None


def test_list_images_by_label_and_without_labels_and_test_flag(
    store: ItemStore, owner: Space, upload: Upload, new_label: NewLabel
) -> None:
    cat, dog = new_label("cat"), new_label("dog")
    only_cat = upload([cat])
    both = upload([cat, dog])
    only_dog = upload([dog], test_image=True)
    cat_test = upload([cat], test_image=True)
    unlabelled = upload()

    def listed(flt: ImageFilter) -> tuple[list[str], int]:
        page = list_images(store, owner, ALL, flt)
        return _ids(page), page.count

    assert listed(ImageFilter(labels=(cat,))) == ([cat_test.id, both.id, only_cat.id], 3)
    assert listed(ImageFilter(labels=(cat, dog))) == ([both.id], 1)
    assert listed(ImageFilter(labels=(cat,), not_labels=(dog,))) == ([cat_test.id, only_cat.id], 2)
    assert listed(ImageFilter(not_labels=(cat,))) == ([unlabelled.id, only_dog.id], 2)
    assert listed(ImageFilter(test=True)) == ([cat_test.id, only_dog.id], 2)
    assert listed(ImageFilter(labels=(cat,), test=False)) == ([both.id, only_cat.id], 2)


def test_a_label_listing_pages_by_its_memberships(
    store: ItemStore, owner: Space, upload: Upload, new_label: NewLabel
) -> None:
    cat = new_label("cat")
    images = [upload([cat]) for _ in range(5)]
    upload()  # not a cat: never listed
    flt = ImageFilter(labels=(cat,))
    first = list_images(store, owner, PageRequest(page=1, page_size=3), flt)
    second = list_images(store, owner, PageRequest(page=2, page_size=3, after=first.next_after), flt)
    assert _ids(first) + _ids(second) == [image.id for image in reversed(images)]
    assert (first.count, second.next_after) == (5, None)


def test_filtering_by_an_unknown_label_is_not_found(store: ItemStore, owner: Space, new_label: NewLabel) -> None:
    cat = new_label("cat")
    for flt in (ImageFilter(labels=("nope",)), ImageFilter(labels=(cat, "nope")), ImageFilter(not_labels=("nope",))):
        with pytest.raises(NotFound, match="Label nope not found"):
            list_images(store, owner, ALL, flt)


def test_image_filter_keep_and_is_empty() -> None:
    item = {"labels": {"a": "t", "b": "t"}, "test_image": False}
    assert ImageFilter().is_empty and ImageFilter().keep(item)
    assert ImageFilter(labels=("a", "b")).keep(item)
    assert not ImageFilter(labels=("a", "c")).keep(item)
    assert not ImageFilter(not_labels=("b",)).keep(item)
    assert ImageFilter(test=False).keep(item) and not ImageFilter(test=True).keep(item)
    assert ImageFilter(test=False).keep({})  # no labels, not a test image
    assert not ImageFilter(test=False).is_empty


def test_image_ids_with_labels_is_the_union_without_repeats(
    store: ItemStore, owner: Space, upload: Upload, new_label: NewLabel
) -> None:
    cat, dog, bird = new_label("cat"), new_label("dog"), new_label("bird")
    a, b, c = upload([cat]), upload([cat, dog]), upload([dog])
    upload()
    found = image_ids_with_labels(store, owner, [cat, dog, bird])
    assert sorted(found) == sorted([a.id, b.id, c.id])
    assert len(found) == 3
    assert image_ids_with_labels(store, owner, [bird]) == []


def test_the_same_bytes_uploaded_concurrently_leave_one_image(
    store: ItemStore, blobs: BlobStore, owner: Space, photo: Callable[[], bytes], racing: Racing, new_label: NewLabel
) -> None:
    data, cat = photo(), new_label("cat")
    winner: list[TrainingImage] = []
    racer = racing(lambda other: winner.append(upload_image(other, blobs, owner, data, LIMITS)))
    with pytest.raises(Conflict) as refused:
        upload_image(racer, blobs, owner, data, LIMITS, label_ids=[cat])
    assert refused.value.detail == duplicate_detail(winner[0].id)
    assert _ids(list_images(store, owner, ALL, ImageFilter())) == [winner[0].id]
    assert get_label(store, owner, cat).images_count == 0  # the loser's label was not counted
    # Only the winner's files remain: the loser removed the ones it had written.
    assert sorted(blobs.list_keys("images/")) == sorted([image_blob(winner[0]), thumb_blob(winner[0])])


def test_a_label_deleted_during_an_upload_leaves_nothing(
    store: ItemStore, blobs: BlobStore, owner: Space, photo: Callable[[], bytes], racing: Racing, new_label: NewLabel
) -> None:
    cat, dog = new_label("cat"), new_label("dog")
    racer = racing(lambda other: delete_label(other, owner, dog))
    with pytest.raises(NotFound) as refused:
        upload_image(racer, blobs, owner, photo(), LIMITS, label_ids=[cat, dog])
    assert refused.value.detail == "a label given for the image was deleted meanwhile; try again"
    assert list_images(store, owner, ALL, ImageFilter()).count == 0
    assert get_label(store, owner, cat).images_count == 0
    assert _memberships(store, owner, cat) == []
    assert list(blobs.list_keys("")) == []


def test_a_label_deleted_while_its_image_is_deleted_is_a_conflict(
    store: ItemStore, blobs: BlobStore, owner: Space, upload: Upload, racing: Racing, new_label: NewLabel
) -> None:
    cat, dog = new_label("cat"), new_label("dog")
    image = upload([cat, dog])
    racer = racing(lambda other: delete_label(other, owner, dog))
    with pytest.raises(Conflict) as refused:
        delete_image(racer, blobs, owner, image.id)
    assert refused.value.detail == "the image's labels changed while it was being deleted; try again"
    kept = get_image(store, owner, image.id)  # nothing of the deletion happened
    assert list(kept.label_ids) == [cat]
    assert get_label(store, owner, cat).images_count == 1
    assert blobs.exists(image_blob(image))
    delete_image(store, blobs, owner, image.id)  # tried again, it goes
    assert get_label(store, owner, cat).images_count == 0


def test_a_label_deleted_while_being_put_on_an_image_is_not_found(
    store: ItemStore, owner: Space, upload: Upload, racing: Racing, new_label: NewLabel
) -> None:
    image, cat = upload(), new_label("cat")
    racer = racing(lambda other: delete_label(other, owner, cat))
    with pytest.raises(NotFound, match=f"Label {cat} not found"):
        add_label_to_image(racer, owner, image.id, cat)
    assert get_image(store, owner, image.id).label_ids == {}
    assert _memberships(store, owner, cat) == []


def test_a_label_put_on_an_image_concurrently_counts_once(
    store: ItemStore, owner: Space, upload: Upload, racing: Racing, new_label: NewLabel
) -> None:
    image, cat = upload(), new_label("cat")
    racer = racing(lambda other: add_label_to_image(other, owner, image.id, cat))
    assert list(add_label_to_image(racer, owner, image.id, cat).label_ids) == [cat]
    assert get_label(store, owner, cat).images_count == 1
    assert _memberships(store, owner, cat) == [image.id]


def test_a_label_taken_off_an_image_concurrently_uncounts_once(
    store: ItemStore, owner: Space, upload: Upload, racing: Racing, new_label: NewLabel
) -> None:
    cat, dog = new_label("cat"), new_label("dog")
    image = upload([cat, dog])
    racer = racing(lambda other: remove_label_from_image(other, owner, image.id, cat))
    assert list(remove_label_from_image(racer, owner, image.id, cat).label_ids) == [dog]
    assert get_label(store, owner, cat).images_count == 0
    assert get_label(store, owner, dog).images_count == 1
    assert _memberships(store, owner, cat) == []
