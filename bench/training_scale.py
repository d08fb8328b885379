"""Training time and peak memory for 100, 500 and 2,000 images: from an empty embedding cache,
then again after adding 10 % more images (only those are embedded).

Images: real photos, made distinct by cropping, mirroring and scaling (each variant is new
content to the embedding cache). From the development data set when it is present (its labels),
otherwise from scikit-image's sample photos (one label per photo).

Floors, measured in the same run:
* time: the backbone alone, batch 16, on every view the job must embed (images x augmented views);
* memory: a process that only opens the backbone and runs one batch of 16."""

from __future__ import annotations

import io
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from bench.common import say, summary, timed
from kestrel.local.worker import LocalWorker
from kestrel.training.embeddings import AUGMENTED_VIEWS
from tests.api.http import Api
from tests.photos import SAMPLE_NAMES, sample

_MEMORY_FLOOR_SCRIPT = """
import numpy as np
from kestrel.training.job import peak_memory_mb
from kestrel.vision.backbone import ensure_backbone
from kestrel.vision.session import create_session
backbone = ensure_backbone()
session = create_session(backbone.path)
session.run([backbone.features_name], {backbone.input_name: np.zeros((16, 3, 224, 224), np.float32)})
print(peak_memory_mb())
"""


def source_photos(scenes: Path | None) -> dict[str, list[Image.Image]]:
    """Photos to make variants of, by label."""
    if scenes is not None and scenes.is_dir():
        by_label: dict[str, list[Image.Image]] = {}
        for split in ("train", "val"):
            for folder in sorted((scenes / split).iterdir()):
                by_label.setdefault(folder.name, []).extend(
                    Image.open(path).convert("RGB") for path in sorted(folder.glob("*.jpg"))
                )
        return by_label
    return {name: [sample(name)] for name in SAMPLE_NAMES}


def variants(sources: dict[str, list[Image.Image]], seed: int) -> Iterator[tuple[str, bytes]]:
    """An endless stream of distinct (label, JPEG) pairs, the labels taking turns."""
    rng = random.Random(seed)
    while True:
        for label, photos in sources.items():
            image = rng.choice(photos)
            width, height = image.size
            scale = rng.uniform(0.6, 1.0)
            w, h = max(32, int(width * scale)), max(32, int(height * scale))
            left, top = rng.randint(0, width - w), rng.randint(0, height - h)
            crop = image.crop((left, top, left + w, top + h))
            if rng.random() < 0.5:
                crop = ImageOps.mirror(crop)
            side = rng.randint(128, 320)
            crop = crop.resize((side, max(32, int(side * h / w))))
            out = io.BytesIO()
            crop.save(out, format="JPEG", quality=rng.randint(80, 95))
            yield label, out.getvalue()


def _upload(
    api: Api, stream: Iterator[tuple[str, bytes]], task_id: str, label_ids: dict[str, str], size: int, count: int
) -> float:
    """Uploads ``count`` images of ``stream`` (creating the task's labels as they come); seconds per image."""
    started = time.perf_counter()
    for _ in range(count):
        label, data = next(stream)
        if label not in label_ids:
            label_ids[label] = api.create_label(f"{label} ({size})")["id"]
            api.post(f"task/{task_id}/add-label/", {"label_id": label_ids[label]})
        api.upload(data, labels=[label_ids[label]])
    return (time.perf_counter() - started) / count


def train_once(api: Api, worker: LocalWorker, task_id: str) -> dict[str, Any]:
    model = api.post(f"task/{task_id}/train/", status=201)
    started = time.perf_counter()
    worker.run_until_idle(timeout=7200)
    seconds = time.perf_counter() - started
    trained = api.get(f"model/{model['id']}")
    assert trained["train_status"] == "TRAINED", trained
    card = trained["metrics"]
    return {
        "seconds": seconds,
        "version": trained["version"],
        "test_accuracy": card["accuracy"],
        "job_seconds": card["training_seconds"],
        "phase_seconds": card["phase_seconds"],
        "peak_memory_mb": card["peak_memory_mb"],
        "embedded": card["embedded_images"],
        "cached": card["cached_images"],
    }


def training_scale(api: Api, worker: LocalWorker, sizes: tuple[int, ...], scenes: Path | None) -> dict[str, Any]:
    from kestrel.vision.backbone import ensure_backbone
    from kestrel.vision.session import create_session

    photos = source_photos(scenes)
    backbone = ensure_backbone()
    session = create_session(backbone.path)
    batch = np.zeros((16, 3, 224, 224), np.float32)
    per_view = summary(timed(lambda: session.run([backbone.features_name], {backbone.input_name: batch}), 10))
    floor_view_ms = per_view["median_ms"] / 16
    floor_memory = float(
        subprocess.run(
            [sys.executable, "-c", _MEMORY_FLOOR_SCRIPT], check=True, capture_output=True, text=True
        ).stdout.split()[-1]
    )
    rows = []
    for size in sizes:
        task = api.create_task(f"Scale {size}")
        # As many labels as keep every one above the training minimum of 20 images.
        chosen = dict(list(photos.items())[: max(2, min(len(photos), size // 20))])
        stream = variants(chosen, seed=size)
        label_ids: dict[str, str] = {}

        upload_seconds = _upload(api, stream, task["id"], label_ids, size, size)
        empty = train_once(api, worker, task["id"])
        _upload(api, stream, task["id"], label_ids, size, size // 10)
        added = train_once(api, worker, task["id"])
        for step, figures in (("empty cache", empty), ("after adding 10 %", added)):
            images = size if step == "empty cache" else size + size // 10
            figures["images"] = images
            figures["floor_seconds"] = figures["embedded"] * AUGMENTED_VIEWS * floor_view_ms / 1000
            say(
                f"training {images} images ({step}): {figures['seconds']:.1f} s "
                f"(floor {figures['floor_seconds']:.1f} s), peak {figures['peak_memory_mb']:.0f} MB"
            )
        rows.append(
            {
                "size": size,
                "upload_ms_per_image": 1000 * upload_seconds,
                "empty cache": empty,
                "after adding 10 %": added,
            }
        )
    return {
        "rows": rows,
        "floor_ms_per_view": floor_view_ms,
        "floor_memory_mb": floor_memory,
        "augmented_views": AUGMENTED_VIEWS,
    }
