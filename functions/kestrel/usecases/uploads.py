"""Uploading a training image: size, duplicate and image checks, then the store records it.

The image is proven here (every pixel decoded, in bounded memory, see ``vision.imagefile``) and
its thumbnail made, so the store only writes what it is given and never decodes an image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kestrel.config import Limits
from kestrel.domain.entities import TrainingImage
from kestrel.domain.errors import Conflict, InvalidInput, TooLarge
from kestrel.ports.blobs import BlobStore
from kestrel.ports.items import ItemStore
from kestrel.store import images
from kestrel.store.images import CheckedImage
from kestrel.store.keys import Space
from kestrel.vision.imagefile import DEFAULT_MAX_DECODED_BYTES, DecodeLimits, ImageRejected, check_and_thumbnail


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    max_pixels: int
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES

    @classmethod
    def from_settings(cls, limits: Limits) -> UploadLimits:
        return cls(limits.max_image_bytes, limits.max_image_pixels, limits.max_decoded_bytes)


def check_image(data: bytes, limits: UploadLimits) -> CheckedImage:
    """The bytes as an image the store may keep, or a 4xx error saying why not."""
    if len(data) > limits.max_bytes:
        raise TooLarge(
            f"the image is {len(data):,} bytes, over the limit of {limits.max_bytes:,} bytes; compress or scale it down"
        )
    try:
        info, thumbnail = check_and_thumbnail(data, DecodeLimits(limits.max_pixels, limits.max_decoded_bytes))
    except ImageRejected as rejected:
        raise InvalidInput(f"not a usable image: {rejected}") from None
    return CheckedImage(
        data=data,
        content_hash=images.content_hash_of(data),
        format=info.format,
        mime=info.mime,
        width=info.width,
        height=info.height,
        thumbnail=thumbnail,
    )


def upload_image(
    items: ItemStore,
    blobs: BlobStore,
    space: Space,
    data: bytes,
    limits: UploadLimits,
    *,
    label_ids: list[str] | None = None,
    meta_data: dict[str, Any] | None = None,
    test_image: bool = False,
    noresize: bool = False,
) -> TrainingImage:
    """Check and store one training image; a duplicate is named before any pixel is decoded."""
    if len(data) <= limits.max_bytes:
        duplicate = images.find_duplicate(items, space, images.content_hash_of(data))
        if duplicate is not None:
            raise Conflict(images.duplicate_detail(duplicate))
    checked = check_image(data, limits)
    return images.add_image(
        items,
        blobs,
        space,
        checked,
        label_ids=label_ids,
        meta_data=meta_data,
        test_image=test_image,
        noresize=noresize,
    )
