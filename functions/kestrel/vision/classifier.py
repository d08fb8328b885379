"""Classify's models in memory: ONE onnxruntime session per backbone, shared by every task, and
the tasks' heads (a small matrix each, :mod:`kestrel.vision.heads`) in an LRU bounded by bytes.

A request runs the backbone once for its batch, then its task's head in numpy: a task not in the
cache costs the read of its head file (kilobytes), not a whole model file (12.8 MB) and a session build."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from kestrel.vision.backbone import Backbone, find_backbone
from kestrel.vision.heads import ServedHead, descriptors
from kestrel.vision.session import create_session


class HeadCache:
    """Heads by key (a version's blob prefix), least recently used out first once their
    :attr:`ServedHead.nbytes` together pass ``max_bytes``. One load per key even when many
    requests ask at once."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError(f"the head cache needs a positive size in bytes, not {max_bytes}")
        self.max_bytes = max_bytes
        self.bytes = 0  # the cached heads' nbytes together
        self.loads = 0  # heads read and parsed (for tests and metrics)
        self._heads: OrderedDict[str, ServedHead] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._heads)

    def __contains__(self, key: str) -> bool:
        return key in self._heads

    def get(self, key: str, load: Callable[[], ServedHead]) -> ServedHead:
        with self._lock:
            head = self._heads.get(key)
            if head is not None:
                self._heads.move_to_end(key)
                return head
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if key in self._heads:
                    return self._heads[key]
            try:
                head = load()
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            with self._lock:
                self.loads += 1
                self._keep(key, head)
            return head

    def _keep(self, key: str, head: ServedHead) -> None:
        """Cache ``head`` and evict the oldest until the bound holds (a head alone over the
        bound is served, not kept)."""
        if head.nbytes > self.max_bytes:
            return
        self._heads[key] = head
        self.bytes += head.nbytes
        while self.bytes > self.max_bytes:
            _, evicted = self._heads.popitem(last=False)
            self.bytes -= evicted.nbytes


class Backbones:
    """One session per backbone id, built on first use and kept for the process's life (an
    installation has one backbone, or a few after a converter change)."""

    def __init__(self, find: Callable[[str], Backbone] = find_backbone) -> None:
        self._find = find
        self._sessions: dict[str, tuple[Backbone, ort.InferenceSession]] = {}
        self._lock = threading.Lock()

    @property
    def loaded(self) -> dict[str, Path]:
        """Backbone id -> the file its session was built from."""
        return {backbone_id: backbone.path for backbone_id, (backbone, _) in self._sessions.items()}

    def session(self, backbone_id: str) -> tuple[Backbone, ort.InferenceSession]:
        """Raises :class:`kestrel.vision.backbone.BackboneUnavailable` for an id it cannot find."""
        with self._lock:  # sessions are built rarely; the lock keeps it to one per id
            if backbone_id not in self._sessions:
                backbone = self._find(backbone_id)
                self._sessions[backbone_id] = (backbone, create_session(backbone.path))
            return self._sessions[backbone_id]

    def features(self, backbone_id: str, batch: np.ndarray) -> np.ndarray:
        backbone, session = self.session(backbone_id)
        [features] = session.run([backbone.features_name], {backbone.input_name: batch})
        return np.asarray(features, dtype=np.float32)

    def run(self, head: ServedHead, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities [N, labels] and L2-normalised descriptors [N, features] for a
        preprocessed batch: the backbone once, then the head."""
        features = self.features(head.backbone_id, batch)
        if features.shape[1] != head.features_dim:
            raise ValueError(f"backbone gives {features.shape[1]} features, the head reads {head.features_dim}")
        return head.probabilities(features), descriptors(features)
