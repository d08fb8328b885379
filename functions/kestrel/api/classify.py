"""Route: classify/ — up to 10 images per call, batched into one onnxruntime run.

A bad record (not an image, an unreachable or forbidden URL) gets its own ``_status`` with a
4xx code, and the other records are still classified."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import ConfigDict, Field

from kestrel.api.context import RequestScope, current_ports
from kestrel.api.docs import responses
from kestrel.api.images import decode_base64_image
from kestrel.api.schemas import Id, Request
from kestrel.domain.entities import TaskType, TrainStatus
from kestrel.domain.errors import InvalidInput, KestrelError
from kestrel.store.tasks import get_task
from kestrel.store.version_files import model_prefix
from kestrel.store.versions import get_model_by_version
from kestrel.urlfetch.fetch import Deadline, FetchPolicy, FetchRefused, fetch_image_bytes
from kestrel.vision.imagefile import ImageRejected, displayed_size
from kestrel.vision.preprocess import preprocess

router = APIGatewayRouter()
MAX_RECORDS = 10
_cache: Any = None  # the process's ModelCache, made on first use (it imports onnxruntime)


class ClassifyRequest(Request):
    task_id: Id
    version: int | None = Field(None, ge=1, description="a trained version; default: the production version")
    descriptor: Annotated[int, Field(ge=0, le=1)] | bool = Field(0, description="1: add _descriptor to records")
    records: list[dict[str, Any]] = Field(description="1 to 10 of {'_url': ...} or {'_base64': ...}")

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "task_id": "5b3e7c9e-2f4e-4a43-9f0e-1c2d3e4f5a6b",
                    "records": [{"_url": "https://example.com/cat.jpg"}],
                }
            ]
        },
    )


@dataclass
class Prepared:
    pixels: np.ndarray | None = None
    width: int = 0
    height: int = 0
    code: int = 200
    text: str = "OK"


def model_cache() -> Any:
    global _cache
    if _cache is None:
        from kestrel.vision.classifier import ModelCache

        # Read through the current ports on every load, never a blob store captured once.
        _cache = ModelCache(
            lambda key: current_ports().blobs.get(key), capacity=current_ports().settings.vision.model_cache_size
        )
    return _cache


def _prepare(record: dict[str, Any], max_pixels: int, policy: FetchPolicy, budget: Deadline) -> Prepared:
    """The record's image, fetched (within the request's shared ``budget``) or decoded and
    preprocessed, or why it cannot be."""
    try:
        if isinstance(record.get("_base64"), str) and record["_base64"]:
            data = decode_base64_image(record["_base64"])
        elif isinstance(record.get("_url"), str) and record["_url"]:
            data = fetch_image_bytes(record["_url"], policy, budget)
        else:
            return Prepared(code=400, text="the record needs '_url' or '_base64'")
        # preprocess proves the bytes are a whole image; the size then comes from the header.
        # Decoded at the size the model needs; big decodes wait for one of the process's few
        # slots (vision.imagefile.FULL_SIZE_DECODES), so ten huge records never sit in memory at once.
        pixels = preprocess(
            data, max_pixels=max_pixels, max_decoded_bytes=current_ports().settings.limits.max_decoded_bytes
        )
        width, height = displayed_size(data)
        return Prepared(pixels, width, height)
    except FetchRefused as refused:
        return Prepared(code=refused.status, text=refused.detail)
    except ImageRejected as rejected:
        return Prepared(code=400, text=f"not a usable image: {rejected}")
    except KestrelError as error:
        return Prepared(code=400, text=error.detail)


def _ranked(pairs: list[tuple[dict[str, str], float]]) -> list[dict[str, Any]]:
    """Labels with their probabilities, most probable first."""
    ordered = sorted(pairs, key=lambda pair: -pair[1])
    return [{"id": label["id"], "name": label["name"], "prob": round(float(prob), 6)} for label, prob in ordered]


@router.post(
    "/recognition/v2/classify",
    summary="Classify 1 to 10 images with a task's model",
    tags=["classify"],
    responses=responses(None, 200, (400, 401, 404)),
)
def classify(body: ClassifyRequest) -> dict[str, Any]:
    started = time.perf_counter()
    scope = RequestScope(router)
    if not 1 <= len(body.records) <= MAX_RECORDS:
        raise InvalidInput(f"'records' must hold 1 to {MAX_RECORDS} images, not {len(body.records)}")
    task = get_task(scope.ports.items, scope.space, body.task_id)
    version = body.version if body.version is not None else task.production_version
    if version == -1:
        raise InvalidInput(f"task '{task.name}' has no trained model yet: train it (task/{{id}}/train/) first")
    model_info = get_model_by_version(scope.ports.items, scope.space, task.id, version)
    if model_info.train_status != TrainStatus.TRAINED:
        raise InvalidInput(f"version {version} is {model_info.train_status.value}, not Trained; it cannot classify")
    model = model_cache().get(model_prefix(scope.owner_id, model_info.id))

    max_pixels = scope.ports.settings.limits.max_image_pixels
    policy = FetchPolicy.from_settings(scope.ports.settings.fetch)
    budget = policy.request_budget()  # all the URLs of this request together, not each one
    with ThreadPoolExecutor(max_workers=min(4, len(body.records))) as pool:
        prepared = list(pool.map(lambda record: _prepare(record, max_pixels, policy, budget), body.records))
    good = [index for index, item in enumerate(prepared) if item.pixels is not None]
    results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if good:
        probabilities, descriptors = model.run(np.stack([prepared[i].pixels for i in good]))  # type: ignore[misc]
        results = {index: (probabilities[row], descriptors[row]) for row, index in enumerate(good)}

    records = []
    for index, (record, item) in enumerate(zip(body.records, prepared, strict=True)):
        out = {key: value for key, value in record.items() if key != "_base64"}
        out["_status"] = {"code": item.code, "text": item.text}
        if index in results:
            probs, descriptor = results[index]
            labels = _ranked(list(zip(model.labels, probs.tolist(), strict=True)))
            out.update(best_label=labels[0], labels=labels, _width=item.width, _height=item.height)
            if task.type == TaskType.MULTI_LABEL:
                # Every tag over its own threshold (tuned for F1 on held-out data at training).
                thresholds = model.thresholds or [0.5] * len(model.labels)
                over = [
                    (label, prob)
                    for label, prob, limit in zip(model.labels, probs.tolist(), thresholds, strict=True)
                    if prob >= limit
                ]
                out["best_labels"] = _ranked(over)
            if body.descriptor:
                out["_descriptor"] = [round(float(v), 6) for v in descriptor.tolist()]
        records.append(out)
    return {
        "task_id": task.id,
        "version": version,
        "status": {"code": 200, "text": "OK"},
        "statistics": {"processing time": round(time.perf_counter() - started, 4)},
        "records": records,
    }
