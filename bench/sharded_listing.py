"""Image listings on SQLite, in process, as a workspace grows: what the 16-way merge of the
sharded image lists costs locally (docs/benchmarks.md, "Sharded image lists").

``python -m bench.sharded_listing [--images 10000] [--repeats 20]``: median ms of the first page
of all images, a deep page of all images reached by cursor, and the first page of one label
(50 a page). Runs against whichever ``kestrel`` is importable, so the same command measures the
layout before lists (PYTHONPATH=<old checkout>/functions) for comparison."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.listing import tiny_jpegs
from kestrel.adapters.folder_blobs import FolderBlobStore
from kestrel.adapters.sqlite_items import SqliteItemStore
from kestrel.adapters.url_signing import UrlSigner
from kestrel.domain.entities import LabelType
from kestrel.store.accounts import ensure_owner
from kestrel.store.images import ImageFilter, list_images
from kestrel.store.keys import Space
from kestrel.store.labels import create_label
from kestrel.store.paging import PageRequest
from kestrel.usecases.uploads import UploadLimits, upload_image

PAGE = 50


def _median_ms(call: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kestrel-sharded-"))
    store = SqliteItemStore(root / "items.db")
    blobs = FolderBlobStore(root / "blobs", UrlSigner(b"bench"))
    space = Space.default_of(ensure_owner(store, "bench@example.com").id)
    label = create_label(store, space, "all", LabelType.CATEGORY, "", "").id
    limits = UploadLimits(max_bytes=10**6, max_pixels=10**6, max_decoded_bytes=10**8)
    for data in tiny_jpegs(args.images, seed=1):
        upload_image(store, blobs, space, data, limits, label_ids=[label])
    everything, by_label = ImageFilter(), ImageFilter(labels=(label,))
    first = list_images(store, space, PageRequest(1, PAGE), everything)
    deep_page = args.images // PAGE - 1
    after = list_images(store, space, PageRequest(deep_page - 1, PAGE), everything).next_after
    figures = {
        "all images, first page": _median_ms(
            lambda: list_images(store, space, PageRequest(1, PAGE), everything), args.repeats
        ),
        "all images, deep page by cursor": _median_ms(
            lambda: list_images(store, space, PageRequest(deep_page, PAGE, after=after), everything), args.repeats
        ),
        "one label, first page": _median_ms(
            lambda: list_images(store, space, PageRequest(1, PAGE), by_label), args.repeats
        ),
    }
    assert len(first.items) == PAGE
    print(f"{args.images} images, {PAGE} a page, median of {args.repeats}:")
    for name, value in figures.items():
        print(f"  {name}: {value:.1f} ms")


if __name__ == "__main__":
    main()
