"""Similarity search: for each of 1 to 10 records, the task's training images nearest by
descriptor (cosine), from the descriptors the training job stored beside a model version.

A record is an image (``_url`` or ``_base64``, fetched and decoded exactly as classify does,
with the same bounds and per-record errors) or a ``training_image_id``: an image the version
was trained on is looked up in the index (so it finds itself first, similarity 1); any other
stored image of the workspace is read from the blob store and described by the model.

The index holds the images of the version's training (both parts); an image added later is
not in it until the next training, and an image deleted since is left out of the answers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kestrel.domain.entities import Task, TrainingImage
from kestrel.domain.errors import InvalidInput, NotFound
from kestrel.ports import Ports
from kestrel.ports.blobs import BlobNotFound
from kestrel.store import images
from kestrel.store.keys import Space
from kestrel.store.tasks import get_task
from kestrel.store.version_files import DESCRIPTORS_FILE, model_prefix
from kestrel.usecases.classify import MAX_RECORDS, prepare_records, trained_version, version_head
from kestrel.vision.byte_cache import ByteBoundedCache
from kestrel.vision.descriptor_index import BadIndex, DescriptorIndex, Match
from kestrel.vision.imagefile import ImageRejected
from kestrel.vision.preprocess import preprocess

DEFAULT_K = 10
MAX_K = 100
IMAGE_ID_FIELD = "training_image_id"
#: Descriptor indexes a process keeps, in bytes (5 KB an image): 512 MB holds ~100,000 images
#: of one task or a few thousand of each of many, beside the models in the classify Lambda's
#: 3 GB. A bigger index is searched, never kept (docs/architecture.md: where this stops).
INDEX_CACHE_BYTES = 512 * 1024 * 1024
#: Candidates read beyond ``k``, so that images deleted since the training can be left out.
_SLACK = 16


@dataclass(frozen=True)
class SimilarCommand:
    space: Space
    task_id: str
    records: list[dict[str, Any]]
    k: int = DEFAULT_K
    version: int | None = None  # None: the task's production version


@dataclass(frozen=True)
class Neighbour:
    image: TrainingImage
    similarity: float


@dataclass
class SimilarRecord:
    echo: dict[str, Any]  # the record as sent, without its image bytes
    code: int = 200
    text: str = "OK"
    neighbours: list[Neighbour] | None = None  # most similar first


@dataclass(frozen=True)
class SimilarResult:
    task_id: str
    version: int
    indexed_images: int  # images in the version's index
    records: list[SimilarRecord]
    seconds: float


class IndexCache:
    """Descriptor indexes by blob key, least recently used out first, bounded by their bytes."""

    def __init__(self, max_bytes: int = INDEX_CACHE_BYTES) -> None:
        self._cache = ByteBoundedCache[DescriptorIndex](max_bytes)

    @property
    def loads(self) -> int:
        return self._cache.loads

    @property
    def nbytes(self) -> int:
        return self._cache.bytes

    def get(self, key: str, load: Callable[[str], bytes]) -> DescriptorIndex:
        """The index in blob ``key``, read with ``load`` when it is not kept (BlobNotFound: none)."""
        return self._cache.get(key, lambda: DescriptorIndex.from_bytes(load(key)))


_indexes = IndexCache()


def index_cache() -> IndexCache:
    return _indexes


def _check(command: SimilarCommand) -> None:
    if not 1 <= len(command.records) <= MAX_RECORDS:
        raise InvalidInput(f"'records' must hold 1 to {MAX_RECORDS} images, not {len(command.records)}")
    if not 1 <= command.k <= MAX_K:
        raise InvalidInput(f"'k' must be 1 to {MAX_K}, not {command.k}")


def _load_index(ports: Ports, space: Space, version: int, model_id: str) -> DescriptorIndex:
    try:
        return index_cache().get(model_prefix(space.owner_id, model_id) + DESCRIPTORS_FILE, ports.blobs.get)
    except BlobNotFound:
        raise InvalidInput(
            f"version {version} has no image descriptors (it was trained before similarity search existed, "
            "or on over ~40,000 images, whose descriptors are not kept); train the task again"
        ) from None
    except BadIndex as error:
        raise InvalidInput(
            f"version {version}'s image descriptors cannot be read ({error}); train the task again"
        ) from None


@dataclass
class _Query:
    vector: np.ndarray | None = None  # L2-normalised descriptor
    pixels: np.ndarray | None = None  # still to be described by the model
    code: int = 200
    text: str = "OK"


def _stored_image(ports: Ports, space: Space, image_id: Any, index: DescriptorIndex) -> _Query:
    """A training image as a query: its row of the index, or its pixels when it has none."""
    if not isinstance(image_id, str) or not image_id:
        return _Query(code=400, text=f"'{IMAGE_ID_FIELD}' must be a training image id (a string)")
    try:
        image = images.get_image(ports.items, space, image_id)
    except NotFound as missing:
        return _Query(code=404, text=missing.detail)
    row = index.row_of(image.id)
    if row is not None:
        return _Query(vector=index.vector(row))
    limits = ports.settings.limits
    try:
        data = ports.blobs.get(images.image_blob(image))
        pixels = preprocess(data, max_pixels=limits.max_image_pixels, max_decoded_bytes=limits.max_decoded_bytes)
    except (BlobNotFound, ImageRejected) as error:
        return _Query(code=404, text=f"training image {image_id} cannot be read: {error}")
    return _Query(pixels=pixels)


def _queries(ports: Ports, space: Space, records: list[dict[str, Any]], index: DescriptorIndex) -> list[_Query]:
    """Each record as a query, or why it cannot be one (its own 4xx; the others still run)."""
    kinds = []
    for record in records:
        sends = "_url" in record or "_base64" in record
        if IMAGE_ID_FIELD in record and sends:
            raise InvalidInput(
                f"a record names an image ('{IMAGE_ID_FIELD}') or sends one ('_url', '_base64'), not both"
            )
        kinds.append("stored" if IMAGE_ID_FIELD in record else "sent" if sends else "none")
    sent = [record for record, kind in zip(records, kinds, strict=True) if kind == "sent"]
    prepared = iter(prepare_records(ports, sent) if sent else [])
    queries = []
    for record, kind in zip(records, kinds, strict=True):
        if kind == "stored":
            queries.append(_stored_image(ports, space, record[IMAGE_ID_FIELD], index))
        elif kind == "sent":
            item = next(prepared)
            queries.append(_Query(pixels=item.pixels, code=item.code, text=item.text))
        else:
            queries.append(_Query(code=400, text=f"the record needs '_url', '_base64' or '{IMAGE_ID_FIELD}'"))
    return queries


def _describe(ports: Ports, space: Space, task: Task, version: int, model_id: str, queries: list[_Query]) -> None:
    """Descriptors of the queries that are pixels, in one batch through the version's backbone
    (the features its descriptors were made of)."""
    pending = [query for query in queries if query.vector is None and query.pixels is not None]
    if not pending:
        return
    models, head = version_head(ports, space, task, version, model_id)
    _, descriptors = models.backbones.run(head, np.stack([query.pixels for query in pending]))  # type: ignore[misc]
    for query, vector in zip(pending, descriptors, strict=True):
        query.vector = np.asarray(vector, dtype=np.float32)


def _alive(ports: Ports, space: Space, index: DescriptorIndex, matches: list[Match], k: int) -> list[Neighbour]:
    """The first ``k`` matches whose image still exists (one batch read)."""
    ids = [str(index.ids[match.row]) for match in matches]
    alive = images.images_by_id(ports.items, space, ids)
    kept = [
        Neighbour(alive[image_id], round(match.similarity, 6))
        for image_id, match in zip(ids, matches, strict=True)
        if image_id in alive
    ]
    return kept[:k]


def _neighbours(
    ports: Ports, space: Space, index: DescriptorIndex, vectors: np.ndarray, k: int
) -> list[list[Neighbour]]:
    """Each query's ``k`` nearest images that still exist: one search for all the queries, for a
    few more than ``k``; a query that deletions leave short of ``k`` searches further on its own."""
    wanted = min(len(index), k + _SLACK)
    answers = []
    for vector, matches in zip(vectors, index.search(vectors, wanted), strict=True):
        kept, reach = _alive(ports, space, index, matches, k), wanted
        while len(kept) < k and reach < len(index):
            reach = min(len(index), reach * 4)
            kept = _alive(ports, space, index, index.search(vector[None], reach)[0], k)
        answers.append(kept)
    return answers


def similar(ports: Ports, command: SimilarCommand) -> SimilarResult:
    started = time.perf_counter()
    _check(command)
    task = get_task(ports.items, command.space, command.task_id)
    version, model_id = trained_version(ports, command.space, task, command.version)
    index = _load_index(ports, command.space, version, model_id)
    queries = _queries(ports, command.space, command.records, index)
    _describe(ports, command.space, task, version, model_id, queries)
    vectors = [query.vector for query in queries if query.vector is not None]
    found = iter(_neighbours(ports, command.space, index, np.stack(vectors), command.k) if vectors else [])
    results = []
    for record, query in zip(command.records, queries, strict=True):
        result = SimilarRecord({k: v for k, v in record.items() if k != "_base64"}, query.code, query.text)
        if query.vector is not None:
            result.neighbours = next(found)
        results.append(result)
    return SimilarResult(task.id, version, len(index), results, round(time.perf_counter() - started, 4))
