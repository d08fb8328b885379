"""A model version's training-image descriptors as one file, and the exact cosine search over them.

The file is an uncompressed ``.npz`` (numpy's zip of ``.npy`` arrays, read without pickle):
``ids`` [N] (the training images' ids) and ``vectors`` [N, D] float16, each row the image's
L2-normalised backbone features (the plain view, what classify's ``descriptor`` output gives).
float16 halves the file and the memory (2.5 KB an image at D = 1280) and costs nothing a
ranking can see (cosine error ~1e-3).

The search is exact: every row is scored against the queries (a matrix product), a chunk at a
time so that only one chunk is ever widened to float32, and ``np.argpartition`` keeps each
chunk's best ``k``. docs/benchmarks.md measures it from 10k to 1M rows."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

import numpy as np

#: Rows widened to float32 at once: 8,192 x 1,280 x 4 bytes = 42 MB of scratch memory.
CHUNK_ROWS = 8192
STORED_DTYPE = np.float16


class BadIndex(ValueError):
    """The bytes are not a descriptor file this code wrote."""


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero: it is similar to nothing)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


@dataclass(frozen=True)
class Match:
    row: int
    similarity: float  # cosine, -1..1


@dataclass(frozen=True)
class DescriptorIndex:
    ids: np.ndarray  # [N] str
    vectors: np.ndarray  # [N, D] float16, L2-normalised rows
    _rows: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.ids.ndim != 1 or len(self.ids) != len(self.vectors):
            raise BadIndex(f"ids {self.ids.shape} and vectors {self.vectors.shape} do not match")
        self._rows.update({str(image_id): row for row, image_id in enumerate(self.ids.tolist())})

    @classmethod
    def build(cls, ids: list[str], features: np.ndarray) -> DescriptorIndex:
        """From raw backbone features [N, D] (normalised here)."""
        return cls(np.array(ids, dtype=str), normalised(features).astype(STORED_DTYPE))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes + self.ids.nbytes)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def row_of(self, image_id: str) -> int | None:
        return self._rows.get(image_id)

    def vector(self, row: int) -> np.ndarray:
        return np.asarray(self.vectors[row], dtype=np.float32)

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        np.savez(out, ids=self.ids, vectors=self.vectors)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> DescriptorIndex:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                ids, vectors = arrays["ids"], arrays["vectors"]
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise BadIndex(f"not a descriptor file: {error}") from None
        if ids.dtype.kind != "U" or vectors.dtype != STORED_DTYPE:
            raise BadIndex(f"unexpected types: ids {ids.dtype}, vectors {vectors.dtype}")
        return cls(ids, vectors)

    def search(self, queries: np.ndarray, k: int) -> list[list[Match]]:
        """For each query row (L2-normalised, [Q, D]), the ``k`` most similar rows, best first."""
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must be [Q, {self.dim}], not {list(queries.shape)}")
        k = min(k, len(self))
        if k <= 0:
            return [[] for _ in range(len(queries))]
        rows_kept, scores_kept = [], []
        for start in range(0, len(self), CHUNK_ROWS):
            chunk = self.vectors[start : start + CHUNK_ROWS].astype(np.float32)
            scores = queries @ chunk.T  # [Q, chunk]
            take = min(k, scores.shape[1])
            best = np.argpartition(-scores, take - 1, axis=1)[:, :take]
            rows_kept.append(best + start)
            scores_kept.append(np.take_along_axis(scores, best, axis=1))
        rows, scores = np.concatenate(rows_kept, axis=1), np.concatenate(scores_kept, axis=1)
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        answers = []
        for q in range(len(queries)):
            order = top[q][np.argsort(-scores[q, top[q]], kind="stable")]
            answers.append([Match(int(rows[q, i]), float(np.clip(scores[q, i], -1.0, 1.0))) for i in order.tolist()])
        return answers
