"""The descriptor file and its exact search: the same answers as a brute-force sort;
files that are not ours are refused."""

from __future__ import annotations

import io

import numpy as np
import pytest

from kestrel.vision.descriptor_index import BadIndex, DescriptorIndex, normalised


def _index(rows: int, dim: int = 16, seed: int = 0) -> DescriptorIndex:
    rng = np.random.default_rng(seed)
    return DescriptorIndex.build([f"id-{n}" for n in range(rows)], rng.standard_normal((rows, dim)))


def test_search_equals_a_brute_force_sort() -> None:
    index = _index(20_123)
    queries = normalised(np.random.default_rng(1).standard_normal((3, 16)))
    found = index.search(queries, 25)
    exact = queries.astype(np.float64) @ index.vectors.astype(np.float64).T
    for q, matches in enumerate(found):
        expected = np.argsort(-exact[q], kind="stable")[:25]
        assert [m.row for m in matches] == expected.tolist()
        assert [m.similarity for m in matches] == pytest.approx(exact[q, expected].tolist(), abs=1e-6)


def test_a_stored_row_finds_itself_first_with_similarity_one() -> None:
    index = _index(500)
    row = index.row_of("id-321")
    assert row == 321
    [[best, *_]] = index.search(index.vector(row)[None], 5)
    assert best.row == 321 and best.similarity == pytest.approx(1.0, abs=1e-6)


def test_k_over_the_rows_gives_every_row_and_rows_are_unit_length() -> None:
    index = _index(7)
    [matches] = index.search(index.vector(0)[None], 100)
    assert sorted(m.row for m in matches) == list(range(7))
    assert np.linalg.norm(index.vectors, axis=1) == pytest.approx(np.ones(7), abs=1e-6)
    assert index.vectors.dtype == np.float32 and index.nbytes == index.vectors.nbytes + index.ids.nbytes


def test_the_file_round_trips_without_pickle() -> None:
    index = _index(50)
    again = DescriptorIndex.from_bytes(index.to_bytes())
    assert again.ids.tolist() == index.ids.tolist()
    assert np.array_equal(again.vectors, index.vectors)


@pytest.mark.parametrize(
    "arrays",
    [
        {"ids": np.array(["a", "b"]), "vectors": np.zeros((3, 4), np.float32)},  # counts differ
        {"ids": np.array(["a"]), "vectors": np.zeros((1, 4), np.float64)},  # not float32
        {"ids": np.array([object()], dtype=object), "vectors": np.zeros((1, 4), np.float32)},  # pickle
        {"vectors": np.zeros((1, 4), np.float32)},  # no ids
    ],
)
def test_files_that_are_not_descriptor_files_are_refused(arrays: dict[str, np.ndarray]) -> None:
    out = io.BytesIO()
    np.savez(out, **arrays)  # type: ignore[arg-type]
    with pytest.raises(BadIndex):
        DescriptorIndex.from_bytes(out.getvalue())
    with pytest.raises(BadIndex):
        DescriptorIndex.from_bytes(b"not a zip file")


def test_queries_of_the_wrong_width_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[Q, 16\]"):
        _index(10).search(np.zeros((1, 8), np.float32), 3)
