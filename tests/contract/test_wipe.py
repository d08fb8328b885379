"""``wipe_label`` on both stores (SQLite + folder, DynamoDB + S3 under moto): in several steps,
with images that carry other labels, and with an image carrying more labels than one step's
transaction can hold (DynamoDB takes at most 100 writes, each item once)."""

from __future__ import annotations

import pytest

from kestrel.domain.entities import LabelType
from kestrel.ports.blobs import BlobStore
from kestrel.ports.items import ItemStore
from kestrel.store.images import (
    ImageFilter,
    add_label_to_image,
    get_image,
    image_blob,
    list_images,
    thumb_blob,
    wipe_label,
)
from kestrel.store.keys import Space
from kestrel.store.labels import create_label, get_label
from kestrel.store.paging import PageRequest
from kestrel.usecases.uploads import UploadLimits
from kestrel.usecases.uploads import upload_image as add_image
from tests.photos import distinct_photos

SPACE = Space.default_of("owner-1")
LIMITS = UploadLimits(max_bytes=10_000_000, max_pixels=50_000_000)


def _label(items: ItemStore, name: str) -> str:
    return create_label(items, SPACE, name, LabelType.CATEGORY, "", "").id


def _remaining(items: ItemStore) -> set[str]:
    page = list_images(items, SPACE, PageRequest(page=1, page_size=1000), ImageFilter())
    return {str(item["id"]) for item in page.items}


def test_wipe_takes_every_image_of_the_label_in_steps(items: ItemStore, blobs: BlobStore) -> None:
    doomed, kept = _label(items, "doomed"), _label(items, "kept")
    photos = distinct_photos(36, "chelsea", side=32)
    both = [add_image(items, blobs, SPACE, data, LIMITS, label_ids=[doomed, kept]) for data in photos[:5]]
    only = [add_image(items, blobs, SPACE, data, LIMITS, label_ids=[doomed]) for data in photos[5:33]]
    survivors = [add_image(items, blobs, SPACE, data, LIMITS, label_ids=[kept]).id for data in photos[33:]]

    assert wipe_label(items, blobs, SPACE, doomed) == len(both) + len(only)  # more than one step's 30

    assert _remaining(items) == set(survivors)
    assert get_label(items, SPACE, kept).images_count == len(survivors)
    for image in both + only:
        assert not blobs.exists(image_blob(image)) and not blobs.exists(thumb_blob(image))
    # The duplicate markers went with the images: the same bytes may come back.
    add_image(items, blobs, SPACE, photos[0], LIMITS)


@pytest.mark.slow  # 46 labelled writes, one transaction each (moto copies the table on each)
def test_an_image_with_more_labels_than_a_step_holds_is_wiped_too(items: ItemStore, blobs: BlobStore) -> None:
    doomed = _label(items, "doomed")
    # 2 + 46 deletes + 46 counters: over the 90 writes of a step.
    others = [_label(items, f"other-{index}") for index in range(45)]
    crowded, plain = (
        add_image(items, blobs, SPACE, data, LIMITS, label_ids=[doomed])
        for data in distinct_photos(2, "coffee", side=32)
    )
    for label_id in others:
        add_label_to_image(items, SPACE, crowded.id, label_id)
    assert len(get_image(items, SPACE, crowded.id).label_ids) == 46

    assert wipe_label(items, blobs, SPACE, doomed) == 2
    assert _remaining(items) == set()
    assert all(get_label(items, SPACE, label_id).images_count == 0 for label_id in others)
    for image in (crowded, plain):
        assert not blobs.exists(thumb_blob(image))
