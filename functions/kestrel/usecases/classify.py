"""Classify 1 to 10 images with a task's model: choose the version, check it is TRAINED, fetch
or decode each record, run the shared backbone once for the batch and then the version's head
(kestrel.vision.classifier), apply multi_label thresholds and, when asked, keep each image as an
unlabelled training image (``store_images``).

A bad record (not an image, an unreachable or forbidden URL) gets its own status with a 4xx
code, and the other records are still classified.

A stored image also enters the task's review queue (``store.review``) with the prediction and how
unsure the model was (``domain.review``), unless it already carries one of the task's labels."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from kestrel.config import Limits
from kestrel.domain.encoded import decode_base64_image
from kestrel.domain.entities import Task, TaskType, TrainStatus, now_iso
from kestrel.domain.errors import Conflict, InvalidInput, KestrelError
from kestrel.domain.review import KEPT_LABELS, category_margin, tag_closeness
from kestrel.domain.review import PREDICTION_KEY as PREDICTION_KEY  # where stored predictions go
from kestrel.ports import Ports
from kestrel.ports.blobs import BlobNotFound, BlobStore
from kestrel.store import images
from kestrel.store.keys import Space
from kestrel.store.review import task_label_ids
from kestrel.store.review_entries import enqueue
from kestrel.store.tasks import get_task
from kestrel.store.version_files import CARD_FILE, HEAD_FILE, MODEL_FILE, model_prefix
from kestrel.store.versions import get_model_by_version
from kestrel.urlfetch.fetch import Deadline, FetchPolicy, FetchRefused, fetch_image_bytes
from kestrel.usecases.uploads import UploadLimits, upload_image
from kestrel.vision.backbone import BackboneUnavailable
from kestrel.vision.classifier import Backbones, HeadCache
from kestrel.vision.heads import ServedHead
from kestrel.vision.imagefile import ImageRejected, displayed_size
from kestrel.vision.preprocess import preprocess

MAX_RECORDS = 10
#: Records fetched or decoded at once (each may wait on a remote server for its URL).
FETCH_THREADS = 4


@dataclass(frozen=True)
class Serving:
    """What a classify process keeps: the backbone sessions and the heads' LRU."""

    heads: HeadCache
    backbones: Backbones


_serving: Serving | None = None
_serving_lock = threading.Lock()


def serving(ports: Ports) -> Serving:
    """The process's models (made on first use: it imports onnxruntime); the heads bounded by
    ``VisionSettings.head_cache_mb``."""
    global _serving
    with _serving_lock:
        if _serving is None:
            _serving = Serving(HeadCache(ports.settings.vision.head_cache_bytes), Backbones())
        return _serving


def load_head(blobs: BlobStore, prefix: str) -> ServedHead:
    """The head of the version whose files start with ``prefix``: its head file, or for a version
    trained before head files, the head inside its fused ONNX (read once, then cached as a head)."""
    try:
        return ServedHead.from_bytes(blobs.get(prefix + HEAD_FILE))
    except BlobNotFound:
        card = json.loads(blobs.get(prefix + CARD_FILE))
        return ServedHead.of_fused(blobs.get(prefix + MODEL_FILE), card)


@dataclass(frozen=True)
class ClassifyCommand:
    space: Space  # the owner and the workspace the request addresses
    task_id: str
    records: list[dict[str, Any]]
    version: int | None = None  # None: the task's production version
    descriptor: bool = False
    store_images: bool = False


@dataclass
class RecordResult:
    """One record's answer: the caller's own fields, its status, and what the model said."""

    echo: dict[str, Any]  # the record as sent, without its image bytes
    code: int = 200
    text: str = "OK"
    labels: list[dict[str, Any]] | None = None  # most probable first
    best_labels: list[dict[str, Any]] | None = None  # multi_label: over their thresholds
    width: int | None = None
    height: int | None = None
    descriptor: list[float] | None = None
    stored_image_id: str | None = None
    uncertainty: float | None = None  # domain.review: how unsure the model was (smaller: more)

    @property
    def best_label(self) -> dict[str, Any] | None:
        return self.labels[0] if self.labels else None


@dataclass(frozen=True)
class Classification:
    task_id: str
    version: int
    records: list[RecordResult]
    seconds: float


@dataclass
class Prepared:
    data: bytes = b""
    pixels: np.ndarray | None = None
    width: int = 0
    height: int = 0
    code: int = 200
    text: str = "OK"


def _prepare(record: dict[str, Any], limits: Limits, policy: FetchPolicy, budget: Deadline) -> Prepared:
    """The record's image, fetched (within the request's shared ``budget``) or decoded and
    preprocessed, or why it cannot be."""
    try:
        if isinstance(record.get("_base64"), str) and record["_base64"]:
            data = decode_base64_image(record["_base64"], "_base64")
        elif isinstance(record.get("_url"), str) and record["_url"]:
            data = fetch_image_bytes(record["_url"], policy, budget)
        else:
            return Prepared(code=400, text="the record needs '_url' or '_base64'")
        # preprocess proves the bytes are a whole image; the size then comes from the header.
        # Decoded at the size the model needs; big decodes wait for one of the process's few
        # slots (vision.imagefile.FULL_SIZE_DECODES), so ten huge records never sit in memory at once.
        pixels = preprocess(data, max_pixels=limits.max_image_pixels, max_decoded_bytes=limits.max_decoded_bytes)
        width, height = displayed_size(data)
        return Prepared(data, pixels, width, height)
    except FetchRefused as refused:
        return Prepared(code=refused.status, text=refused.detail)
    except ImageRejected as rejected:
        return Prepared(code=400, text=f"not a usable image: {rejected}")
    except KestrelError as error:
        return Prepared(code=400, text=error.detail)


def prepare_records(ports: Ports, records: list[dict[str, Any]]) -> list[Prepared]:
    """Every record's image, fetched or decoded a few at a time; its URLs share one time budget
    (also what similar/ runs on its records)."""
    limits, policy = ports.settings.limits, FetchPolicy.from_settings(ports.settings.fetch)
    budget = policy.request_budget()  # all the URLs of this request together, not each one
    with ThreadPoolExecutor(max_workers=min(FETCH_THREADS, len(records))) as pool:
        return list(pool.map(lambda record: _prepare(record, limits, policy, budget), records))


def _ranked(pairs: list[tuple[dict[str, str], float]]) -> list[dict[str, Any]]:
    """Labels with their probabilities, most probable first."""
    ordered = sorted(pairs, key=lambda pair: -pair[1])
    return [{"id": label["id"], "name": label["name"], "prob": round(float(prob), 6)} for label, prob in ordered]


def trained_version(ports: Ports, space: Space, task: Task, version: int | None) -> tuple[int, str]:
    """The version to classify with (default: production) and its model id; it must be TRAINED."""
    chosen = task.production_version if version is None else version
    if chosen == -1:
        raise InvalidInput(f"task '{task.name}' has no trained model yet: train it (task/{{id}}/train/) first")
    model = get_model_by_version(ports.items, space, task.id, chosen)
    if model.train_status != TrainStatus.TRAINED:
        raise InvalidInput(f"version {chosen} is {model.train_status.value}, not TRAINED; it cannot classify")
    return chosen, model.id


def _fill(
    result: RecordResult, head: ServedHead, task: Task, output: tuple[np.ndarray, np.ndarray], descriptor: bool
) -> None:
    probs, vector = output
    labels = list(head.labels)
    result.labels = _ranked(list(zip(labels, probs.tolist(), strict=True)))
    if task.type == TaskType.MULTI_LABEL:
        # Every tag over its own threshold (tuned for F1 on held-out data at training).
        thresholds = head.thresholds or (0.5,) * len(labels)
        over = [
            (label, prob)
            for label, prob, limit in zip(labels, probs.tolist(), thresholds, strict=True)
            if prob >= limit
        ]
        result.best_labels = _ranked(over)
        result.uncertainty = tag_closeness(probs.tolist(), thresholds)
    else:
        result.uncertainty = category_margin(probs.tolist())
    if descriptor:
        result.descriptor = [round(float(v), 6) for v in vector.tolist()]


def _store(ports: Ports, space: Space, data: bytes, meta_data: dict[str, Any]) -> str:
    """Keep the bytes as an unlabelled training image; the same bytes twice keep one image."""
    existing = images.find_duplicate(ports.items, space, images.content_hash_of(data))
    if existing is not None:
        return existing
    limits = ports.settings.limits
    try:
        image = upload_image(
            ports.items, ports.blobs, space, data, UploadLimits.from_settings(limits), meta_data=meta_data
        )
    except Conflict:  # stored by a concurrent request meanwhile: that image keeps them
        found = images.find_duplicate(ports.items, space, images.content_hash_of(data))
        if found is None:
            raise
        return found
    return image.id


@dataclass(frozen=True)
class Prediction:
    """What a version said about one image, as kept with the image when it is stored."""

    version: int
    model_id: str
    labels: list[dict[str, Any]]  # {id, name, prob}, most probable first
    best_labels: list[dict[str, Any]] | None  # multi_label: the tags over their thresholds
    uncertainty: float

    def meta_data(self, task_id: str) -> dict[str, Any]:
        """The image's ``meta_data[PREDICTION_KEY]`` (its shape predates the review queue)."""
        best = self.labels[0] if self.labels else {}
        return {
            "task_id": task_id,
            "version": self.version,
            "model_id": self.model_id,
            "best_label": {"id": best.get("id"), "name": best.get("name")},
            "prob": best.get("prob"),
            "classified": now_iso(),
        }

    def for_review(self) -> dict[str, Any]:
        """What the review queue shows: the most probable labels (bounded) and the suggestion."""
        return {
            "version": self.version,
            "model_id": self.model_id,
            "labels": self.labels[:KEPT_LABELS],
            "best_labels": None if self.best_labels is None else self.best_labels[:KEPT_LABELS],
            "classified": now_iso(),
        }


def store_classified(ports: Ports, space: Space, task: Task, data: bytes, prediction: Prediction) -> str:
    """store_images for one image: keep it (once), and queue it for review in ``task`` unless it
    already has one of the task's labels (the same bytes uploaded and labelled before)."""
    image_id = _store(ports, space, data, {PREDICTION_KEY: prediction.meta_data(task.id)})
    held = images.get_image(ports.items, space, image_id).label_ids
    if not task_label_ids(task) & set(held):
        enqueue(ports.items, space, task.id, image_id, prediction.for_review(), prediction.uncertainty)
    return image_id


def classify(ports: Ports, command: ClassifyCommand) -> Classification:
    started = time.perf_counter()
    if not 1 <= len(command.records) <= MAX_RECORDS:
        raise InvalidInput(f"'records' must hold 1 to {MAX_RECORDS} images, not {len(command.records)}")
    task = get_task(ports.items, command.space, command.task_id)
    version, model_id = trained_version(ports, command.space, task, command.version)
    models, head = version_head(ports, command.space, task, version, model_id)

    prepared = prepare_records(ports, command.records)
    good = [index for index, item in enumerate(prepared) if item.pixels is not None]
    outputs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if good:
        batch = np.stack([prepared[i].pixels for i in good])  # type: ignore[misc]
        probabilities, descriptors = models.backbones.run(head, batch)  # the backbone once for the batch
        outputs = {index: (probabilities[row], descriptors[row]) for row, index in enumerate(good)}

    results = []
    for index, (record, item) in enumerate(zip(command.records, prepared, strict=True)):
        result = RecordResult({k: v for k, v in record.items() if k != "_base64"}, item.code, item.text)
        if index in outputs:
            result.width, result.height = item.width, item.height
            _fill(result, head, task, outputs[index], command.descriptor)
            if command.store_images:
                _keep(
                    ports,
                    command.space,
                    task,
                    item.data,
                    result,
                    Prediction(version, model_id, result.labels or [], result.best_labels, result.uncertainty or 0.0),
                )
        results.append(result)
    return Classification(task.id, version, results, round(time.perf_counter() - started, 4))


def version_head(ports: Ports, space: Space, task: Task, version: int, model_id: str) -> tuple[Serving, ServedHead]:
    """The process's models and the version's head (cached), once its backbone is known to be here
    (also what similar/ describes its records with)."""
    models = serving(ports)
    prefix = model_prefix(space.owner_id, model_id)
    head = models.heads.get(prefix, lambda: load_head(ports.blobs, prefix))
    _check_backbone(models.backbones, head, task, version)
    return models, head


def _check_backbone(backbones: Backbones, head: ServedHead, task: Task, version: int) -> None:
    """The version's backbone must be here (its session is built now, before any record is
    fetched): a head only reads the features of the backbone it was trained on."""
    try:
        backbones.session(head.backbone_id)
    except BackboneUnavailable as missing:
        raise Conflict(
            f"version {version} of task '{task.name}' was trained on backbone '{missing.backbone_id}', which this "
            f"installation does not have (it has: {', '.join(missing.available)}); train the task again to use "
            "the current backbone, or classify with another version ('version')"
        ) from None


def _keep(ports: Ports, space: Space, task: Task, data: bytes, result: RecordResult, prediction: Prediction) -> None:
    """store_images for one classified record: its id on the result, or why it was not kept."""
    try:
        result.stored_image_id = store_classified(ports, space, task, data, prediction)
    except KestrelError as error:  # e.g. over the upload size limit: classified, not kept
        result.text = f"OK, but not stored: {error.detail}"
