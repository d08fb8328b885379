"""Classify's models in memory: ONE onnxruntime session per backbone, shared by every task, and
the tasks' heads (a small matrix each, :mod:`kestrel.vision.heads`) in an LRU bounded by bytes.

A request runs the backbone once for its batch, then its task's head in numpy: a task not in the
cache costs the read of its head file (kilobytes), not a whole model file (12.8 MB) and a session build."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from kestrel.vision.backbone import Backbone, find_backbone
from kestrel.vision.byte_cache import ByteBoundedCache
from kestrel.vision.heads import ServedHead, descriptors
from kestrel.vision.session import create_session

#: Heads by key (a version's blob prefix), bounded by their :attr:`ServedHead.nbytes`.
HeadCache = ByteBoundedCache[ServedHead]


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
