"""The served head: its file (safe to load, checked), the byte-bounded head cache, and the
backbone sessions by id (another backbone's model is served by that backbone, or refused)."""

from __future__ import annotations

import io
import shutil
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from kestrel.vision.backbone import Backbone, BackboneUnavailable, backbone_id_for, find_backbone
from kestrel.vision.classifier import Backbones, HeadCache
from kestrel.vision.heads import MAX_HEAD_BYTES, BadHeadFile, ServedHead, descriptors


def synthetic(labels: int = 3, multi_label: bool = False, seed: int = 0, features: int = 1280) -> ServedHead:
    rng = np.random.default_rng(seed)
    return ServedHead(
        weights=rng.normal(0, 0.05, (features, labels)).astype(np.float32),
        bias=rng.normal(0, 0.1, labels).astype(np.float32),
        multi_label=multi_label,
        backbone_id="efficientnet-lite0-0123456789abcdef",
        labels=tuple({"id": f"id-{n}", "name": f"label {n}"} for n in range(labels)),
        thresholds=tuple(0.3 + 0.1 * n for n in range(labels)) if multi_label else (),
    )


@pytest.mark.parametrize("multi_label", [False, True])
def test_the_file_round_trips_exactly(multi_label: bool) -> None:
    head = synthetic(4, multi_label)
    again = ServedHead.from_bytes(head.to_bytes())
    assert np.array_equal(again.weights, head.weights) and np.array_equal(again.bias, head.bias)
    assert (again.multi_label, again.backbone_id, again.labels) == (multi_label, head.backbone_id, head.labels)
    assert again.thresholds == pytest.approx(head.thresholds)
    features = np.random.default_rng(1).normal(0, 1, (5, 1280)).astype(np.float32)
    assert np.array_equal(again.probabilities(features), head.probabilities(features))


def test_probabilities_are_a_softmax_or_a_sigmoid_per_label() -> None:
    features = np.random.default_rng(2).normal(0, 1, (6, 1280)).astype(np.float32)
    softmax = synthetic(3).probabilities(features)
    assert softmax.shape == (6, 3) and softmax.dtype == np.float32
    assert np.allclose(softmax.sum(axis=1), 1.0, atol=1e-6)
    head = synthetic(3, multi_label=True)
    logits = features.astype(np.float64) @ head.weights + head.bias
    assert np.allclose(head.probabilities(features), 1 / (1 + np.exp(-logits)), atol=1e-7)
    unit = descriptors(features)
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    assert np.array_equal(descriptors(np.zeros((1, 4), np.float32)), np.zeros((1, 4), np.float32))


def _npz(**arrays: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)  # type: ignore[arg-type]
    return out.getvalue()


def test_a_file_with_a_pickle_is_refused_without_running_it() -> None:
    good = np.load(io.BytesIO(synthetic().to_bytes()))
    pickled = _npz(weights=good["weights"], bias=good["bias"], meta=np.array([{"format": 1}], dtype=object))
    with pytest.raises(BadHeadFile, match="cannot be read"):
        ServedHead.from_bytes(pickled)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("not a zip", "cannot be read"),
        ("no bias", "lacks bias"),
        ("meta not json", "not JSON"),
        ("format 2", "format 2 is not 1"),
        ("integer weights", "not floats"),
        ("labels do not fit", "do not fit together"),
        ("nan weights", "not all finite"),
    ],
)
def test_a_bad_file_is_refused_with_what_is_wrong(change: str, words: str) -> None:
    head = synthetic()
    stored = dict(np.load(io.BytesIO(head.to_bytes())))
    if change == "not a zip":
        data = b"PK\x03\x04 truncated"
    else:
        if change == "no bias":
            del stored["bias"]
        elif change == "meta not json":
            stored["meta"] = np.frombuffer(b"{nope", dtype=np.uint8)
        elif change == "format 2":
            stored["meta"] = np.frombuffer(stored["meta"].tobytes().replace(b'"format": 1', b'"format": 2'), np.uint8)
        elif change == "integer weights":
            stored["weights"] = stored["weights"].astype(np.int32)
        elif change == "labels do not fit":
            stored["bias"] = stored["bias"][:2]
        elif change == "nan weights":
            stored["weights"][0, 0] = np.nan
        data = _npz(**stored)
    with pytest.raises(BadHeadFile, match=words):
        ServedHead.from_bytes(data)


def test_a_file_that_would_unpack_past_the_bound_is_refused_before_unpacking() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("weights.npy", b"\0" * (MAX_HEAD_BYTES + 1))  # compresses to ~65 kB
    assert len(out.getvalue()) < 1_000_000
    with pytest.raises(BadHeadFile, match="would unpack to"):
        ServedHead.from_bytes(out.getvalue())


def test_the_cache_is_bounded_by_bytes_least_recently_used_first() -> None:
    heads = {name: synthetic(seed=n) for n, name in enumerate("abcd")}
    size = heads["a"].nbytes
    cache = HeadCache(max_bytes=3 * size)
    for name in "abc":
        assert cache.get(name, lambda name=name: heads[name]) is heads[name]  # type: ignore[misc]
    cache.get("a", lambda: pytest.fail("a is cached"))  # a is now the most recently used
    cache.get("d", lambda: heads["d"])
    assert ("b" in cache, "a" in cache, "c" in cache, "d" in cache) == (False, True, True, True)
    assert (len(cache), cache.bytes, cache.loads) == (3, 3 * size, 4)
    big = synthetic(labels=200)  # over the whole bound: served, not kept, nothing evicted for it
    assert cache.get("big", lambda: big) is big and "big" not in cache and len(cache) == 3


def test_a_head_is_loaded_once_however_many_ask_at_once() -> None:
    cache = HeadCache(max_bytes=10**8)
    calls: list[int] = []

    def slow() -> ServedHead:
        calls.append(1)
        time.sleep(0.05)
        return synthetic()

    got: list[ServedHead] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("k", slow))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len({id(head) for head in got}) == 1 and cache.loads == 1


def test_a_failed_load_is_not_cached_and_can_be_tried_again() -> None:
    cache = HeadCache(max_bytes=10**8)
    with pytest.raises(BadHeadFile):
        cache.get("k", lambda: ServedHead.from_bytes(b"junk"))
    assert "k" not in cache and cache.get("k", synthetic).labels


def _two_backbones(backbone: Backbone, folder: Path) -> Backbone:
    """``folder`` as a model folder holding the current backbone and, beside it, an earlier
    conversion (same weights, its own bytes and so its own id)."""
    shutil.copyfile(backbone.path, folder / backbone.path.name)
    model = onnx.load(str(backbone.path))
    model.doc_string = "an earlier conversion"
    path = folder / "efficientnet-lite0-v0.onnx"
    path.write_bytes(model.SerializeToString())
    return Backbone(path=path.resolve(), backbone_id=backbone_id_for(path.read_bytes()))


def test_a_model_of_another_backbone_is_served_by_that_backbone(backbone: Backbone, tmp_path: Path) -> None:
    other = _two_backbones(backbone, tmp_path)
    assert find_backbone(other.backbone_id, tmp_path).path == other.path
    assert find_backbone(backbone.backbone_id, tmp_path).path == (tmp_path / backbone.path.name).resolve()
    backbones = Backbones(lambda backbone_id: find_backbone(backbone_id, tmp_path))
    batch = np.random.default_rng(3).normal(0, 1, (2, 3, 224, 224)).astype(np.float32)
    served = backbones.run(replace(synthetic(), backbone_id=other.backbone_id), batch)
    assert backbones.loaded == {other.backbone_id: other.path}
    current = backbones.run(replace(synthetic(), backbone_id=backbone.backbone_id), batch)
    assert set(backbones.loaded) == {other.backbone_id, backbone.backbone_id}
    assert np.allclose(served[0], current[0], atol=1e-5)  # the same weights in both files

    missing = "efficientnet-lite0-ffffffffffffffff"
    with pytest.raises(BackboneUnavailable) as refused:
        backbones.run(replace(synthetic(), backbone_id=missing), batch)
    assert (refused.value.backbone_id, refused.value.available) == (missing, [backbone.backbone_id, other.backbone_id])
    assert missing in str(refused.value)
