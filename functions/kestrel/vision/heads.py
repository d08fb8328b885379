"""A trained version's head as classify serves it: everything classify needs beside the shared
backbone, in one small file (``head.npz``) stored beside the card.

probabilities = activation(features @ weights + bias), the activation a softmax (multi_class) or
a sigmoid per label (multi_label), exactly the nodes the fused ONNX export appends to the
backbone; descriptor = features / |features| (the export's LpNormalization).

The file is an ``.npz`` (numpy's zip of ``.npy`` arrays, readable by anyone with numpy) read with
``allow_pickle=False``: three arrays, ``weights`` [features, labels] float32, ``bias`` [labels]
float32, and ``meta``, the UTF-8 bytes of a JSON object (format, backbone id, activation, labels
in output order, multi_label thresholds). Nothing in it can run code; sizes are checked before
anything is decompressed.

Versions trained before heads were stored have only the fused ONNX file: :meth:`ServedHead.of_fused`
reads the same weights back from its initialisers (``head_weights``, ``head_bias``, written by
:mod:`kestrel.training.export`)."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Bump when the file's layout changes; a reader refuses formats it does not know.
HEAD_FORMAT = 1
SOFTMAX = "softmax"
SIGMOID = "sigmoid"
#: Refuse a head file whose arrays would decompress to more (10,000 labels x 1,280 features x 4 B
#: is 51 MB): a corrupt or hostile file cannot make the reader allocate without bound.
MAX_HEAD_BYTES = 64 * 1024 * 1024


class BadHeadFile(ValueError):
    """The bytes are not a head file this code can serve."""


@dataclass(frozen=True)
class ServedHead:
    weights: np.ndarray  # [features, labels] float32
    bias: np.ndarray  # [labels] float32
    multi_label: bool
    backbone_id: str  # the backbone whose features the weights read
    labels: tuple[dict[str, str], ...]  # {"id", "name"} in output order
    thresholds: tuple[float, ...] = ()  # multi_label: one per label

    def __post_init__(self) -> None:
        features, outputs = self.weights.shape if self.weights.ndim == 2 else (0, -1)
        if self.bias.shape != (outputs,) or outputs != len(self.labels) or features < 1:
            shapes = f"weights {self.weights.shape}, bias {self.bias.shape} and {len(self.labels)} labels"
            raise BadHeadFile(f"{shapes} do not fit together")
        if self.thresholds and len(self.thresholds) != outputs:
            raise BadHeadFile(f"{len(self.thresholds)} thresholds for {outputs} labels")
        if not (np.isfinite(self.weights).all() and np.isfinite(self.bias).all()):
            raise BadHeadFile("the head's weights are not all finite")

    @property
    def features_dim(self) -> int:
        return int(self.weights.shape[0])

    @property
    def nbytes(self) -> int:
        """What the head holds in memory (the arrays, plus a rough figure for the labels)."""
        label_bytes = sum(len(label["id"]) + len(label["name"]) + 120 for label in self.labels)
        return int(self.weights.nbytes + self.bias.nbytes) + label_bytes + 8 * len(self.thresholds) + 400

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """[N, labels] float32 for backbone features [N, features_dim]."""
        return activate(features.astype(np.float64) @ self.weights + self.bias, self.multi_label).astype(np.float32)

    def to_bytes(self) -> bytes:
        meta = {
            "format": HEAD_FORMAT,
            "backbone_id": self.backbone_id,
            "activation": SIGMOID if self.multi_label else SOFTMAX,
            "labels": [{"id": label["id"], "name": label["name"]} for label in self.labels],
            "thresholds": list(self.thresholds),
        }
        out = io.BytesIO()
        np.savez(
            out,
            weights=np.ascontiguousarray(self.weights, dtype=np.float32),
            bias=np.ascontiguousarray(self.bias, dtype=np.float32),
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ServedHead:
        arrays = _read_arrays(data, ("weights", "bias", "meta"))
        try:
            meta = json.loads(arrays["meta"].tobytes().decode())
        except (UnicodeDecodeError, ValueError) as error:
            raise BadHeadFile(f"the head's meta is not JSON: {error}") from None
        if not isinstance(meta, dict) or meta.get("format") != HEAD_FORMAT:
            raise BadHeadFile(
                f"head format {meta.get('format') if isinstance(meta, dict) else meta!r} is not {HEAD_FORMAT}"
            )
        if meta.get("activation") not in (SOFTMAX, SIGMOID):
            raise BadHeadFile(f"unknown activation {meta.get('activation')!r}")
        return cls(
            weights=_float32(arrays["weights"], "weights"),
            bias=_float32(arrays["bias"], "bias"),
            multi_label=meta["activation"] == SIGMOID,
            backbone_id=str(meta.get("backbone_id", "")),
            labels=_labels(meta.get("labels")),
            thresholds=tuple(float(value) for value in meta.get("thresholds") or ()),
        )

    @classmethod
    def of_fused(cls, onnx_bytes: bytes, card: dict[str, Any]) -> ServedHead:
        """The head inside a fused export (a version trained before head files), with the labels,
        thresholds and backbone id of its card."""
        import onnx  # only for versions without a head file: reading the protobuf
        from onnx import numpy_helper

        try:
            graph = onnx.load_from_string(onnx_bytes).graph
        except Exception as error:  # noqa: BLE001 - protobuf's DecodeError and friends
            raise BadHeadFile(f"the model file is not ONNX: {error}") from None
        found = {init.name: numpy_helper.to_array(init) for init in graph.initializer if init.name.startswith("head_")}
        activations = [node.op_type for node in graph.node if node.name == "head_activation"]
        if "head_weights" not in found or "head_bias" not in found or activations not in (["Softmax"], ["Sigmoid"]):
            raise BadHeadFile("the model file has no Kestrel head (head_weights, head_bias, head_activation)")
        return cls(
            weights=_float32(found["head_weights"], "head_weights"),
            bias=_float32(found["head_bias"], "head_bias"),
            multi_label=activations == ["Sigmoid"],
            backbone_id=str(card.get("backbone_id") or ""),
            labels=_labels(card.get("labels")),
            thresholds=tuple(float(value) for value in card.get("thresholds") or ()),
        )


def activate(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """A sigmoid per label (multi_label) or a softmax over each row: the training's head and the
    served head share it, so what was evaluated is what is served."""
    if multi_label:
        return 1.0 / (1.0 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def descriptors(features: np.ndarray) -> np.ndarray:
    """L2-normalised features, as the fused export's ``descriptor`` output (LpNormalization, p=2)."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.where(norms == 0, 1.0, norms)


def _read_arrays(data: bytes, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named arrays of an .npz, refusing pickles, missing arrays and oversized members."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            declared = sum(info.file_size for info in archive.infolist())
        if declared > MAX_HEAD_BYTES:
            raise BadHeadFile(f"the head file would unpack to {declared} bytes (at most {MAX_HEAD_BYTES})")
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            missing = [name for name in names if name not in archive.files]
            if missing:
                raise BadHeadFile(f"the head file lacks {', '.join(missing)}")
            return {name: np.asarray(archive[name]) for name in names}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        if isinstance(error, BadHeadFile):
            raise
        raise BadHeadFile(f"the head file cannot be read: {error}") from None


def _float32(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype.kind != "f":
        raise BadHeadFile(f"{name} holds {array.dtype}, not floats")
    return np.ascontiguousarray(array, dtype=np.float32)


def _labels(raw: object) -> tuple[dict[str, str], ...]:
    if not isinstance(raw, list) or not all(
        isinstance(label, dict) and "id" in label and "name" in label for label in raw
    ):
        raise BadHeadFile("the labels must be a list of {id, name}")
    return tuple({"id": str(label["id"]), "name": str(label["name"])} for label in raw)
