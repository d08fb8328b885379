"""One ONNX file per trained version: the backbone with the head appended.

Outputs: ``probabilities`` [N, labels] (softmax or sigmoid) and ``descriptor`` [N, features],
the L2-normalised backbone features. The backbone's ImageNet ``logits`` output is dropped."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper, numpy_helper

from kestrel.training.head import Head
from kestrel.vision.backbone import Backbone

PROBABILITIES = "probabilities"
DESCRIPTOR = "descriptor"


def export_model(backbone: Backbone, head: Head) -> bytes:
    model = onnx.load(str(backbone.path))
    graph = model.graph
    features = backbone.features_name
    outputs = head.weights.shape[1]
    graph.initializer.extend(
        [
            numpy_helper.from_array(head.weights, "head_weights"),
            numpy_helper.from_array(head.bias, "head_bias"),
        ]
    )
    activation = (
        helper.make_node("Sigmoid", ["head_logits"], [PROBABILITIES], name="head_activation")
        if head.multi_label
        else helper.make_node("Softmax", ["head_logits"], [PROBABILITIES], name="head_activation", axis=1)
    )
    graph.node.extend(
        [
            helper.make_node("Gemm", [features, "head_weights", "head_bias"], ["head_logits"], name="head_gemm"),
            activation,
            helper.make_node("LpNormalization", [features], [DESCRIPTOR], name="descriptor_l2", axis=1, p=2),
        ]
    )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, ["N", outputs]),
            helper.make_tensor_value_info(DESCRIPTOR, TensorProto.FLOAT, ["N", backbone.features_dim]),
        ]
    )
    # The ImageNet classifier is no longer needed: prune nodes that no output depends on.
    needed = {PROBABILITIES, DESCRIPTOR}
    kept = []
    for node in reversed(list(graph.node)):
        if any(output in needed for output in node.output):
            kept.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    used = {name for node in graph.node for name in node.input}
    initializers = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    model.doc_string = "Kestrel model: EfficientNet-Lite0 backbone + trained head"
    onnx.checker.check_model(model)
    return model.SerializeToString()
