"""The fused export (backbone + head in one ONNX file) and what classify serves (the shared
backbone's session, then the head in numpy) give the same probabilities and descriptors to 1e-5;
a fused file's head reads back exactly (versions trained before head files)."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel.training.export import DESCRIPTOR, PROBABILITIES, export_model
from kestrel.training.head import Head
from kestrel.vision.backbone import ensure_backbone
from kestrel.vision.classifier import Backbones
from kestrel.vision.heads import BadHeadFile, ServedHead
from kestrel.vision.preprocess import preprocess
from kestrel.vision.session import create_session
from tests.photos import photo


def _heads(labels: int, multi_label: bool, seed: int) -> tuple[Head, ServedHead]:
    rng = np.random.default_rng(seed)
    # Weights of the size a trained head has (its logits span several units on real features).
    weights = rng.normal(0, 0.2, (1280, labels)).astype(np.float32)
    bias = rng.normal(0, 0.5, labels).astype(np.float32)
    thresholds = tuple([0.5] * labels) if multi_label else ()
    head = Head(weights, bias, multi_label, strength=0.01, thresholds=thresholds)
    names = tuple({"id": f"id-{n}", "name": f"label {n}"} for n in range(labels))
    served = ServedHead(weights, bias, multi_label, ensure_backbone().backbone_id, names, thresholds)
    return head, served


@pytest.mark.parametrize(("labels", "multi_label"), [(2, False), (7, False), (5, True)])
def test_the_fused_export_equals_backbone_then_head(labels: int, multi_label: bool) -> None:
    head, served = _heads(labels, multi_label, seed=labels)
    fused = create_session(export_model(ensure_backbone(), head))
    batch = np.stack([preprocess(photo(name, 200)) for name in ("chelsea", "coffee", "rocket", "astronaut")])
    probabilities, descriptor = fused.run([PROBABILITIES, DESCRIPTOR], {"image": batch})
    served_probabilities, served_descriptor = Backbones().run(ServedHead.from_bytes(served.to_bytes()), batch)
    assert np.abs(served_probabilities - probabilities).max() <= 1e-5
    assert np.abs(served_descriptor - descriptor).max() <= 1e-5
    assert probabilities.std() > 0.01  # the heads are not trivial: the probabilities differ


@pytest.mark.parametrize("multi_label", [False, True])
def test_the_head_of_a_fused_file_reads_back_exactly(multi_label: bool) -> None:
    head, served = _heads(3, multi_label, seed=9)
    card = {"labels": list(served.labels), "thresholds": list(served.thresholds), "backbone_id": served.backbone_id}
    extracted = ServedHead.of_fused(export_model(ensure_backbone(), head), card)
    assert np.array_equal(extracted.weights, served.weights) and np.array_equal(extracted.bias, served.bias)
    assert (extracted.multi_label, extracted.labels, extracted.backbone_id) == (
        multi_label,
        served.labels,
        served.backbone_id,
    )


def test_a_file_without_a_kestrel_head_is_refused() -> None:
    with pytest.raises(BadHeadFile, match="no Kestrel head"):
        ServedHead.of_fused(ensure_backbone().path.read_bytes(), {"labels": []})
    with pytest.raises(BadHeadFile, match="not ONNX"):
        ServedHead.of_fused(b"not a protobuf at all \xff\xff", {"labels": []})
