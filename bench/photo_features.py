"""Backbone features of a folder of labelled photos (``<root>/<split>/<label>/*.jpg``), exactly as
the training job computes them (its Embedder: plain view first, then the augmented views), plus
the plain view's mirror image (for the flip test-time averaging study). Cached in build/ by file
content, so the head study reruns in seconds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ImageOps

from bench.common import say
from kestrel.ports.blobs import BlobNotFound
from kestrel.training.embeddings import Embedder, ImageRef
from kestrel.vision.backbone import ensure_backbone
from kestrel.vision.preprocess import fit, load_image, to_array
from kestrel.vision.session import create_session

CACHE = Path(__file__).resolve().parents[1] / "build" / "photo-features"


class _FileBlobs:
    """Just enough of the blob store for the Embedder: originals read from their paths, embeddings
    cached as files under build/."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache

    def get(self, key: str) -> bytes:
        path = Path(key) if key.startswith("/") else self.cache / key
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self.cache / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def exists(self, key: str) -> bool:  # pragma: no cover - the protocol's, unused here
        return (self.cache / key).exists()

    def size(self, key: str) -> int:  # pragma: no cover
        return (self.cache / key).stat().st_size

    def delete(self, key: str) -> None:  # pragma: no cover
        (self.cache / key).unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> Iterator[str]:  # pragma: no cover
        return iter(())

    def download_url(self, key: str, expires_in: int, base_url: str) -> str:  # pragma: no cover
        raise NotImplementedError

    def upload_url(self, key: str, expires_in: int, base_url: str, max_bytes: int) -> str:  # pragma: no cover
        raise NotImplementedError


def _plain(embedder: Embedder, blobs: _FileBlobs, ref: ImageRef) -> np.ndarray:
    key = f"plain/{embedder.backbone.backbone_id}/{ref.sha256}.npy"
    path = CACHE / key
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, embedder._features(to_array(fit(load_image(blobs.get(ref.key))))[None]))
    return np.asarray(np.load(path))


@dataclass(frozen=True)
class PhotoSet:
    labels: list[str]
    views: list[np.ndarray]  # per image [1 + augmented, features], plain first
    mirrored: np.ndarray  # [images, features]: the plain view mirrored
    targets: np.ndarray  # [images] label index
    hashes: list[str]  # content sha256 per image


def load_split(root: Path, split: str, augmented: bool = True) -> PhotoSet:
    """The features of ``root/split``; without ``augmented``, only the plain view (and its mirror):
    what scoring a val/ part needs, at a fifth of the cost."""
    labels = sorted(folder.name for folder in (root / split).iterdir() if folder.is_dir())
    files = [
        (index, path) for index, label in enumerate(labels) for path in sorted((root / split / label).glob("*.jpg"))
    ]
    blobs = _FileBlobs(CACHE)
    backbone = ensure_backbone()
    session = create_session(backbone.path)
    embedder = Embedder(backbone, session, blobs)
    refs = [ImageRef(str(path), hashlib.sha256(path.read_bytes()).hexdigest()) for _, path in files]

    def progress(done: int, total: int) -> None:
        if done == total or done % 200 == 0:
            say(f"features of {root.name}/{split}: {done}/{total} ({embedder.computed} computed)")

    views = embedder.embed_all(refs, progress) if augmented else [_plain(embedder, blobs, ref) for ref in refs]
    mirrored = []
    for ref in refs:
        key = f"mirrored/{backbone.backbone_id}/{ref.sha256}.npy"
        path = CACHE / key
        if not path.exists():
            flipped = to_array(ImageOps.mirror(fit(load_image(blobs.get(ref.key)))))[None]
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, embedder._features(flipped)[0])
        mirrored.append(np.load(path))
    return PhotoSet(
        labels, views, np.stack(mirrored), np.array([index for index, _ in files]), [r.sha256 for r in refs]
    )
