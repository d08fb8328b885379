"""Backbone features per image, cached in the blob store by backbone id and content hash.

Each image is embedded once per backbone: its plain view (what classify sees) and a few lightly
augmented views (flips, crops) that give the head more to learn from. A retraining reads the
cache and embeds only images it has not seen before."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from kestrel.ports.blobs import BlobNotFound, BlobStore
from kestrel.vision.backbone import Backbone
from kestrel.vision.preprocess import PREPROCESSING_ID, augment_views, fit, load_image, to_array

AUGMENTED_VIEWS = 4


@dataclass(frozen=True)
class ImageRef:
    key: str  # blob key of the original
    sha256: str


def cache_key(backbone_id: str, sha256: str, views: int) -> str:
    """Features depend on the backbone, the preprocessing and the views: all three are in the key."""
    return f"embeddings/{backbone_id}/{PREPROCESSING_ID}/{views}/{sha256}.npy"


def _to_npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array.astype(np.float32), allow_pickle=False)
    return out.getvalue()


def _from_npy(data: bytes) -> np.ndarray:
    return np.asarray(np.load(io.BytesIO(data), allow_pickle=False), dtype=np.float32)


class Embedder:
    def __init__(self, backbone: Backbone, session: ort.InferenceSession, blobs: BlobStore) -> None:
        self.backbone = backbone
        self.session = session
        self.blobs = blobs
        self.computed = 0  # images embedded in this run (the rest came from the cache)

    def _features(self, batch: np.ndarray) -> np.ndarray:
        outputs = self.session.run([self.backbone.features_name], {self.backbone.input_name: batch})
        return np.asarray(outputs[0], dtype=np.float32)

    def _embed(self, data: bytes, seed: int) -> np.ndarray:
        """[1 + AUGMENTED_VIEWS, features]: the plain view first."""
        picture = load_image(data)  # decoded once for the plain view and the augmented ones
        plain = to_array(fit(picture))[None]
        views = augment_views(picture, AUGMENTED_VIEWS, seed)
        return self._features(np.concatenate([plain, views]))

    def embed_all(self, images: Sequence[ImageRef], progress: Callable[[int, int], None]) -> list[np.ndarray]:
        """Every image's views, from the cache where possible, in the order given."""
        result: list[np.ndarray] = []
        for index, image in enumerate(images):
            key = cache_key(self.backbone.backbone_id, image.sha256, AUGMENTED_VIEWS)
            try:
                result.append(_from_npy(self.blobs.get(key)))
            except (BlobNotFound, ValueError, OSError):
                seed = int(image.sha256[:8], 16)  # same image, same views, whoever trains it
                embedded = self._embed(self.blobs.get(image.key), seed)
                self.blobs.put(key, _to_npy(embedded), "application/octet-stream")
                self.computed += 1
                result.append(embedded)
            progress(index + 1, len(images))
        return result
