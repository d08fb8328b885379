"""Trained models in memory: one onnxruntime session per (owner, model), kept in a bounded LRU.

The classify handler asks ``ModelCache.get`` for every request; a model is read from the blob
store and its session built only the first time (or after it was evicted), never per request."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from kestrel.vision.session import create_session

PROBABILITIES = "probabilities"
DESCRIPTOR = "descriptor"
INPUT = "image"


@dataclass(frozen=True)
class LoadedModel:
    session: ort.InferenceSession
    card: dict[str, Any]

    @property
    def labels(self) -> list[dict[str, str]]:
        return list(self.card["labels"])

    @property
    def thresholds(self) -> list[float]:
        return [float(value) for value in self.card.get("thresholds") or []]

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities [N, labels] and L2-normalised descriptors [N, D] for a preprocessed batch."""
        probabilities, descriptors = self.session.run([PROBABILITIES, DESCRIPTOR], {INPUT: batch})
        return np.asarray(probabilities), np.asarray(descriptors)


class ModelCache:
    """At most ``capacity`` models; the least recently used one goes first."""

    def __init__(self, load_bytes: Callable[[str], bytes], capacity: int = 8) -> None:
        self._load_bytes = load_bytes  # blob key -> bytes
        self.capacity = capacity
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.loads = 0  # how many times a model was read and a session built (for tests and metrics)

    def get(self, prefix: str, load_bytes: Callable[[str], bytes] | None = None) -> LoadedModel:
        """The model whose files are ``prefix + model.onnx`` and ``prefix + card.json``, read with
        ``load_bytes`` (default: the cache's own) when it is not loaded yet."""
        load = load_bytes or self._load_bytes
        with self._lock:
            model = self._models.get(prefix)
            if model is not None:
                self._models.move_to_end(prefix)
                return model
            loading = self._loading.setdefault(prefix, threading.Lock())
        with loading:  # one load per model even when many requests ask at once
            with self._lock:
                if prefix in self._models:
                    return self._models[prefix]
            card = json.loads(load(prefix + "card.json"))
            model = LoadedModel(create_session(load(prefix + "model.onnx")), card)
            with self._lock:
                self.loads += 1
                self._models[prefix] = model
                while len(self._models) > self.capacity:
                    self._models.popitem(last=False)
                self._loading.pop(prefix, None)
            return model
