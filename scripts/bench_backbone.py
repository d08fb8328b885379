"""Time the ONNX backbone in onnxruntime (docs/backbone.md).

    .venv/bin/python scripts/bench_backbone.py [--repeats 200]

Prints ms per image for batch 1 and batch 10 with Kestrel's session settings and a few
alternatives, and the end-to-end time (JPEG bytes → preprocess → logits) for the scenes photos.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from kestrel.vision.backbone import ensure_backbone
from kestrel.vision.preprocess import preprocess, preprocess_batch
from kestrel.vision.session import create_session

SCENES = Path("/work/shared/datasets/scenes/val")


def per_image_ms(run: Callable[[], object], batch: int, repeats: int) -> tuple[float, float]:
    """Median and 10th percentile of ms per image over ``repeats`` timed calls, after warm-up."""
    for _ in range(5):
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000 / batch)
    return statistics.median(times), float(np.percentile(times, 10))


def sample_jpegs() -> list[tuple[str, bytes]]:
    """A scenes photo as shipped and as a phone or camera would deliver it (upscaled, re-encoded)."""
    source = next(iter(sorted(SCENES.glob("*/*.jpg"))), None) if SCENES.is_dir() else None
    if source is None:
        rng = np.random.default_rng(0)
        image = Image.fromarray(rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8))
    else:
        image = Image.open(source).convert("RGB")
    out = []
    for width, height in [(image.width, image.height), (640, 480), (1600, 1200), (4000, 3000)]:
        buffer = io.BytesIO()
        image.resize((width, height), Image.Resampling.BICUBIC).save(buffer, format="JPEG", quality=90)
        out.append((f"{width}x{height} ({len(buffer.getvalue()) // 1024} KB)", buffer.getvalue()))
    return out


def variant_sessions(path: Path) -> dict[str, ort.InferenceSession]:
    def custom(level: ort.GraphOptimizationLevel, threads: int, spinning: bool) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

    return {
        "kestrel (create_session: all optimisations, 2 threads, no spinning)": create_session(path),
        "same, with spinning": custom(ort.GraphOptimizationLevel.ORT_ENABLE_ALL, 2, True),
        "1 thread": custom(ort.GraphOptimizationLevel.ORT_ENABLE_ALL, 1, False),
        "basic optimisations only": custom(ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, 2, False),
        "no optimisations": custom(ort.GraphOptimizationLevel.ORT_DISABLE_ALL, 2, False),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per batch size")
    args = parser.parse_args()
    backbone = ensure_backbone()
    x = np.random.default_rng(0).uniform(-1, 1, size=(10, 3, 224, 224)).astype(np.float32)

    print("| session | batch 1 ms/img (median, p10) | batch 10 ms/img (median, p10) |")
    print("|---|---|---|")
    for name, session in variant_sessions(backbone.path).items():
        print(f"timing: {name} ...", file=sys.stderr, flush=True)
        cells = []
        for batch in (1, 10):
            feed = {backbone.input_name: x[:batch]}
            median, p10 = per_image_ms(partial(session.run, None, feed), batch, args.repeats // batch + 10)
            cells.append(f"{median:.2f} ({p10:.2f})")
        print(f"| {name} | {cells[0]} | {cells[1]} |", flush=True)

    print("\n| decode + preprocess, one JPEG | full decode ms | draft mode ms |")
    print("|---|---|---|")
    for name, data in sample_jpegs():
        full = per_image_ms(partial(preprocess, data, draft=False), 1, 30)[0]
        drafted = per_image_ms(partial(preprocess, data, draft=True), 1, 30)[0]
        print(f"| {name} | {full:.2f} | {drafted:.2f} |", flush=True)

    if SCENES.is_dir():
        images = [p.read_bytes() for p in sorted(SCENES.glob("*/*.jpg"))[:100]]
        session = create_session(backbone.path)
        print("\n| end to end, scenes JPEGs | ms/img (median, p10) |")
        print("|---|---|")
        one = iter(images * 1000)
        median, p10 = per_image_ms(
            lambda: session.run(None, {backbone.input_name: preprocess(next(one))[None]}), 1, args.repeats
        )
        print(f"| one image per request (decode + preprocess + batch 1) | {median:.2f} ({p10:.2f}) |")
        ten = [images[i : i + 10] for i in range(0, len(images), 10)]
        cycle = iter(ten * 1000)
        median, p10 = per_image_ms(
            lambda: session.run(None, {backbone.input_name: preprocess_batch(next(cycle))}),
            10,
            args.repeats // 10 + 10,
        )
        print(f"| ten images per request (decode + preprocess + batch 10) | {median:.2f} ({p10:.2f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
