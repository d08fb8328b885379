"""The similarity search's cache of descriptor files (bounded by bytes) and its handling of images
deleted since the training, on real ports."""

from __future__ import annotations

import numpy as np

from kestrel.store import images
from kestrel.usecases.similar import IndexCache, _neighbours
from kestrel.usecases.uploads import UploadLimits, upload_image
from kestrel.vision.descriptor_index import DescriptorIndex
from tests.photos import distinct_photos
from tests.unit.usecases.conftest import Owned


def test_deleted_images_are_left_out_and_the_search_looks_further_for_k(owned: Owned) -> None:
    ports, space = owned.ports, owned.space
    limits = UploadLimits.from_settings(ports.settings.limits)
    ids = [upload_image(ports.items, ports.blobs, space, data, limits).id for data in distinct_photos(40, "rocket")]
    # Image i is the i-th most similar to the query (cosine falls as i grows).
    features = np.zeros((40, 8), dtype=np.float32)
    features[:, 0], features[:, 1] = 1.0, np.arange(40) / 10
    index = DescriptorIndex.build(ids, features)
    query = np.zeros((1, 8), dtype=np.float32)
    query[0, 0] = 1.0

    [before] = _neighbours(ports, space, index, query, 5)
    assert [n.image.id for n in before] == ids[:5] and before[0].similarity == 1.0
    for image_id in ids[:20]:  # more than the few extra the first search reads
        images.delete_image(ports.items, ports.blobs, space, image_id)
    [after] = _neighbours(ports, space, index, query, 5)
    assert [n.image.id for n in after] == ids[20:25]
    assert [n.similarity for n in after] == sorted((n.similarity for n in after), reverse=True)
    [everything] = _neighbours(ports, space, index, query, 100)
    assert [n.image.id for n in everything] == ids[20:]  # never more than still exists


def test_the_index_cache_is_bounded_by_bytes_and_keeps_no_index_over_the_bound() -> None:
    files = {
        name: DescriptorIndex.build([f"id-{n}" for n in range(rows)], np.ones((rows, 16))).to_bytes()
        for name, rows in (("a", 100), ("b", 100), ("c", 100), ("big", 1000))
    }
    one = DescriptorIndex.from_bytes(files["a"]).nbytes
    cache = IndexCache(max_bytes=2 * one)
    for name in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" comes
        cache.get(name, files.__getitem__)
    assert cache.loads == 3 and cache.nbytes == 2 * one
    cache.get("a", files.__getitem__)
    assert cache.loads == 3  # kept
    cache.get("b", files.__getitem__)
    assert cache.loads == 4  # was evicted
    assert len(cache.get("big", files.__getitem__)) == 1000  # searched, not kept
    assert cache.nbytes <= 2 * one
