"""A model version's training-image descriptors as one file, and the exact cosine search over them.

The file is an uncompressed ``.npz`` (numpy's zip of ``.npy`` arrays, read without pickle):
``ids`` [N] (the training images' ids) and ``vectors`` [N, D] float32, each row the image's
L2-normalised backbone features (the plain view, what classify's ``descriptor`` output gives):
5 KB an image at D = 1280. float32 rather than float16: numpy widens float16 at ~20 ns a value
here, so a float16 matrix costs 250 ms per 10,000 rows on every search (or on every load),
while a float32 one is read as it is and searched by BLAS directly (docs/benchmarks.md).

The search is exact: one matrix product scores every row against the queries, and
``np.argpartition`` keeps each query's best ``k`` before only those are sorted."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

import numpy as np

STORED_DTYPE = np.float32


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
    vectors: np.ndarray  # [N, D] float32, L2-normalised rows
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
        scores = queries @ self.vectors.T  # [Q, N]: the whole cost, one BLAS call
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        answers = []
        for q in range(len(queries)):
            order = top[q][np.argsort(-scores[q, top[q]], kind="stable")]
            answers.append([Match(int(i), float(np.clip(scores[q, i], -1.0, 1.0))) for i in order.tolist()])
        return answers
