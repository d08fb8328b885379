"""A store's worth of data for the layout upgrade tests, in both layouts, and what it shows.

``fill`` builds it with the storage functions themselves (an owner with a token, a task trained
once, two labels on 20+ images each, a second workspace); ``to_layout_1`` writes any item back at
the key the layout before lists gave it (the workspace's partition, no ``lst``); ``shown`` is
everything the listings and reads of today's code show of an owner, page by page through cursors.
An upgraded store must show exactly what the original shows."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image

from kestrel.domain.entities import LabelType, TaskType
from kestrel.domain.training_rules import MIN_IMAGES_PER_LABEL
from kestrel.ports.blobs import BlobStore
from kestrel.ports.items import LIST, PK, SK, Item, ItemStore
from kestrel.store import keys
from kestrel.store.accounts import create_token, ensure_owner, list_tokens
from kestrel.store.images import ImageFilter, get_image, list_images
from kestrel.store.keys import Space
from kestrel.store.labels import create_label, list_labels
from kestrel.store.lifecycle import create_version
from kestrel.store.paging import PageRequest
from kestrel.store.tasks import attach_label, create_task, list_tasks
from kestrel.store.versions import get_model_by_version, list_models
from kestrel.store.workspaces import create_workspace, list_workspaces
from kestrel.usecases.uploads import UploadLimits, upload_image

LIMITS = UploadLimits(max_bytes=1_000_000, max_pixels=10_000_000)
PAGE = 7  # small pages, so every listing takes several and follows cursors


def _png(seed: int) -> bytes:
    image = Image.new("RGB", (8, 8), ((seed * 37) % 256, (seed * 91) % 256, (seed * 13) % 256))
    image.putpixel((0, 0), (seed & 0xFF, (seed >> 8) & 0xFF, 7))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass(frozen=True)
class Sample:
    owner_id: str
    spaces: tuple[Space, ...]


def fill(store: ItemStore, blobs: BlobStore) -> Sample:
    owner = ensure_owner(store, "layout@example.com")
    create_token(store, owner, "migration")
    default = Space.default_of(owner.id)
    task = create_task(store, default, "animals", "", TaskType.MULTI_CLASS)
    label_ids = []
    for name in ("cat", "dog"):
        label_ids.append(create_label(store, default, name, LabelType.CATEGORY, "", "").id)
        attach_label(store, default, task.id, label_ids[-1])
    seed = 0
    for label_id in label_ids:
        for _ in range(MIN_IMAGES_PER_LABEL + 3):
            upload_image(store, blobs, default, _png(seed), LIMITS, label_ids=[label_id])
            seed += 1
    upload_image(store, blobs, default, _png(seed), LIMITS)  # an image without a label
    create_version(store, default, task.id)
    other = Space(owner.id, create_workspace(store, owner.id, "second").id)
    other_task = create_task(store, other, "plants", "", TaskType.MULTI_LABEL)
    tag = create_label(store, other, "green", LabelType.TAG, "", "").id
    attach_label(store, other, other_task.id, tag)
    for _ in range(5):
        seed += 1
        upload_image(store, blobs, other, _png(seed), LIMITS, label_ids=[tag])
    return Sample(owner.id, (default, other))


def to_layout_1(item: Item) -> Item:
    """``item`` as the layout before lists stored it."""
    pk, sk = str(item[PK]), str(item[SK])
    old = {name: value for name, value in item.items() if name != LIST}
    if sk.startswith(keys.OWN_KINDS) and pk.endswith(f"#{sk}"):
        old[PK] = pk.removesuffix(f"#{sk}")
    return old


def _all_pages(lister: Any) -> list[str]:
    """Every id of a listing, following the cursor from page to page."""
    ids: list[str] = []
    request = PageRequest(page=1, page_size=PAGE)
    while True:
        page = lister(request)
        ids += [str(item["id"]) for item in page.items]
        if page.next_after is None:
            return ids
        request = PageRequest(page=page.page + 1, page_size=PAGE, after=page.next_after)


def shown(store: ItemStore, sample: Sample) -> dict[str, Any]:
    seen: dict[str, Any] = {
        "workspaces": [(w.id, w.name) for w in list_workspaces(store, sample.owner_id)],
        "tokens": sorted((t.token_id, t.name) for t in list_tokens(store)),
    }
    for space in sample.spaces:
        tasks = list_tasks(store, space, PageRequest(1, 100), None).items
        labels = list_labels(store, space, PageRequest(1, 100), None, None).items
        images = _all_pages(lambda request, space=space: list_images(store, space, request, ImageFilter()))
        seen[space.workspace_id] = {
            "tasks": [(t["id"], t["name"], sorted(t["labels"])) for t in tasks],
            "labels": [(label["id"], label["name"], label["images_count"]) for label in labels],
            "images": images,
            "image records": [get_image(store, space, image_id).__dict__ for image_id in images],
            "per label": {
                label["id"]: _all_pages(
                    lambda request, space=space, label_id=label["id"]: list_images(
                        store, space, request, ImageFilter(labels=(label_id,))
                    )
                )
                for label in labels
            },
            "models": [
                (m["id"], m["version"], m["train_status"])
                for m in list_models(store, space, PageRequest(1, 100), None).items
            ],
            "version 1": [
                get_model_by_version(store, space, t["id"], 1).id for t in tasks if t.get("versions_created")
            ],
        }
    return seen
