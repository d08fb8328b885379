"""The descriptor file and its exact search: the same answers as a brute-force sort, across
chunk boundaries; files that are not ours are refused; the cache is bounded by bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest

from kestrel.vision.descriptor_index import CHUNK_ROWS, BadIndex, DescriptorIndex, normalised


def _index(rows: int, dim: int = 16, seed: int = 0) -> DescriptorIndex:
    rng = np.random.default_rng(seed)
    return DescriptorIndex.build([f"id-{n}" for n in range(rows)], rng.standard_normal((rows, dim)))


def test_search_equals_a_brute_force_sort_across_chunks() -> None:
    index = _index(CHUNK_ROWS * 2 + 123)
    queries = normalised(np.random.default_rng(1).standard_normal((3, 16)))
    found = index.search(queries, 25)
    exact = queries @ index.vectors.astype(np.float32).T
    for q, matches in enumerate(found):
        expected = np.argsort(-exact[q], kind="stable")[:25]
        assert [m.row for m in matches] == expected.tolist()
        assert [m.similarity for m in matches] == pytest.approx(exact[q, expected].tolist(), abs=1e-6)


def test_a_stored_row_finds_itself_first_with_similarity_one() -> None:
    index = _index(500)
    row = index.row_of("id-321")
    assert row == 321
    [[best, *_]] = index.search(index.vector(row)[None], 5)
    assert best.row == 321 and best.similarity == pytest.approx(1.0, abs=2e-3)


def test_k_over_the_rows_gives_every_row_and_rows_are_unit_length() -> None:
    index = _index(7)
    [matches] = index.search(index.vector(0)[None], 100)
    assert sorted(m.row for m in matches) == list(range(7))
    assert np.linalg.norm(index.vectors.astype(np.float32), axis=1) == pytest.approx(np.ones(7), abs=2e-3)
    assert index.vectors.dtype == np.float16 and index.nbytes == index.vectors.nbytes + index.ids.nbytes


def test_the_file_round_trips_without_pickle() -> None:
    index = _index(50)
    again = DescriptorIndex.from_bytes(index.to_bytes())
    assert again.ids.tolist() == index.ids.tolist()
    assert np.array_equal(again.vectors, index.vectors)


@pytest.mark.parametrize(
    "arrays",
    [
        {"ids": np.array(["a", "b"]), "vectors": np.zeros((3, 4), np.float16)},  # counts differ
        {"ids": np.array(["a"]), "vectors": np.zeros((1, 4), np.float64)},  # not float16
        {"ids": np.array([object()], dtype=object), "vectors": np.zeros((1, 4), np.float16)},  # pickle
        {"vectors": np.zeros((1, 4), np.float16)},  # no ids
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


def test_the_index_cache_is_bounded_by_bytes_and_keeps_no_index_over_the_bound() -> None:
    from kestrel.usecases.similar import IndexCache

    files = {name: _index(rows).to_bytes() for name, rows in (("a", 100), ("b", 100), ("c", 100), ("big", 1000))}
    one = DescriptorIndex.from_bytes(files["a"]).nbytes
    cache = IndexCache(max_bytes=2 * one)
    for name in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" comes
        cache.get(name, files.__getitem__)
    assert cache.loads == 3 and cache.nbytes == 2 * one
    cache.get("a", files.__getitem__)
    assert cache.loads == 3  # kept
    cache.get("b", files.__getitem__)
    assert cache.loads == 4  # was evicted
    assert len(cache.get("big", files.__getitem__)) == 1000  # searched, not kept
    assert cache.nbytes <= 2 * one
