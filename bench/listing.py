"""How listing time grows with the number of images in one label (up to 10,000).

Images are added through the same records code an upload runs (validation, blobs, thumbnail,
one transaction with the label's counter), in process, to keep the set-up fast; listings are
timed over HTTP. Figures per label size: the first page, a page deep in the listing reached by
its ``next`` cursor (what clients and the console follow), and the same page asked for by
number (``page=N`` walks from the start, so it grows with N)."""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
from PIL import Image

from bench.common import say, summary, timed
from kestrel.ports import Ports
from kestrel.store.accounts import authenticate
from kestrel.store.images import ImageFilter, list_images
from kestrel.store.paging import PageRequest
from kestrel.usecases.uploads import UploadLimits, upload_image
from tests.api.http import Api

PAGE_SIZE = 50


def tiny_jpegs(count: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buffer, format="JPEG")
        out.append(buffer.getvalue())
    return out


def listing_growth(api: Api, ports: Ports, token: str, sizes: tuple[int, ...], repeats: int) -> dict[str, Any]:
    owner = authenticate(ports.items, f"Token {token}")
    label = api.create_label("ten thousand")
    limits = UploadLimits(max_bytes=10**6, max_pixels=10**6, max_decoded_bytes=10**8)
    rows = []
    have = 0
    for size in sizes:
        started = time.perf_counter()
        for data in tiny_jpegs(size - have, seed=size):
            upload_image(ports.items, ports.blobs, owner, data, limits, label_ids=[label["id"]])
        add_ms = 1000 * (time.perf_counter() - started) / (size - have)
        have = size
        figures = _measure(api, ports, owner, label["id"], size, repeats)
        figures["add_ms_per_image"] = add_ms
        rows.append(figures)
        say(
            f"listing, {size} images in a label: first page {figures['first page']['median_ms']:.1f} ms, "
            f"deep page by cursor {figures['deep page by cursor']['median_ms']:.1f} ms, "
            f"by number {figures['deep page by number']['median_ms']:.1f} ms"
        )
    return {"page_size": PAGE_SIZE, "rows": rows}


def _measure(api: Api, ports: Ports, owner: str, label_id: str, size: int, repeats: int) -> dict[str, Any]:
    params = {"labels": label_id, "page_size": PAGE_SIZE}
    deep_page = max(1, size // PAGE_SIZE)  # the last page
    cursor = _cursor_to(api, params, deep_page)

    only_label = ImageFilter(labels=(label_id,))
    return {
        "images": size,
        "deep_page": deep_page,
        "first page in process (floor)": summary(
            timed(lambda: list_images(ports.items, owner, PageRequest(1, PAGE_SIZE), only_label), repeats)
        ),
        "label count (GET label)": summary(timed(lambda: api.get(f"label/{label_id}"), repeats)),
        "first page": summary(timed(lambda: api.get("training-image/", params=params), repeats)),
        "deep page by cursor": summary(timed(lambda: api.get(cursor), repeats)),
        "deep page by number": summary(
            timed(lambda: api.get("training-image/", params={**params, "page": deep_page}), repeats)
        ),
        "all images, first page": summary(
            timed(lambda: api.get("training-image/", params={"page_size": PAGE_SIZE}), repeats)
        ),
    }


def _cursor_to(api: Api, params: dict[str, Any], page: int) -> str:
    """The ``next`` link that leads to ``page``, found by following the links from page 1."""
    if page == 1:
        return api.url("training-image/") + "?" + "&".join(f"{k}={v}" for k, v in params.items())
    answer = api.get("training-image/", params=params)
    for _ in range(page - 2):
        answer = api.get(answer["next"])
    return str(answer["next"])
