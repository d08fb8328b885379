"""Similarity search: the exact search's latency and memory from 10,000 to 1,000,000 descriptors
(synthetic, D = 1,280 as EfficientNet-Lite0 gives), and precision@5 on scenes val/ (each val
photo's 5 nearest training images through POST task/{id}/similar/: the share with its label)."""

from __future__ import annotations

import base64
import os
import time
import tracemalloc
from typing import Any

import numpy as np

from bench.common import say, summary, table
from bench.scenes import SCENES, scenes_files
from bench.training_scale import train_once
from kestrel.local.worker import LocalWorker
from kestrel.vision.descriptor_index import STORED_DTYPE, DescriptorIndex, normalised
from kestrel.vision.efficientnet_lite import FEATURES_DIM
from tests.api.http import Api

K = 10
#: The file round trip is measured up to this size (1M rows would hold 2 x 5 GB at once).
MAX_LOADED = 100_000


def synthetic_index(rows: int, seed: int = 0) -> DescriptorIndex:
    """``rows`` random unit vectors, made a chunk at a time (1M rows never exist as float32)."""
    rng = np.random.default_rng(seed)
    vectors = np.empty((rows, FEATURES_DIM), dtype=STORED_DTYPE)
    for start in range(0, rows, 65536):
        end = min(rows, start + 65536)
        vectors[start:end] = normalised(rng.standard_normal((end - start, FEATURES_DIM), dtype=np.float32))
    ids = np.array([f"{n:08d}" for n in range(rows)], dtype=str)
    return DescriptorIndex(ids, vectors)


def _search_memory(index: DescriptorIndex, queries: np.ndarray) -> int:
    """Peak bytes the search allocates beyond the index (numpy reports to tracemalloc)."""
    tracemalloc.start()
    try:
        index.search(queries, K)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def search_scaling(sizes: tuple[int, ...], repeats: int) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(1)
    for size in sizes:
        started = time.perf_counter()
        index = synthetic_index(size)
        made = time.perf_counter() - started
        row: dict[str, Any] = {"vectors": size, "index_mb": index.nbytes / 1e6, "load_ms": None}
        if size <= MAX_LOADED:  # a load holds the file's bytes and the index at once: 2x
            data = index.to_bytes()
            started = time.perf_counter()
            DescriptorIndex.from_bytes(data)
            row["load_ms"] = 1000 * (time.perf_counter() - started)
            del data
        for batch in (1, 10):
            queries = normalised(rng.standard_normal((batch, FEATURES_DIM), dtype=np.float32))
            samples = []
            for _ in range(max(3, repeats // (1 + size // 100_000))):
                begun = time.perf_counter()
                index.search(queries, K)
                samples.append(time.perf_counter() - begun)
            row[f"batch {batch}"] = summary(samples)
            row[f"scratch_mb batch {batch}"] = _search_memory(index, queries) / 1e6
        say(
            f"similar: {size:,} vectors ({row['index_mb']:.0f} MB, made in {made:.1f} s): "
            f"search {row['batch 1']['median_ms']:.1f} ms (1 query), {row['batch 10']['median_ms']:.1f} ms (10)"
        )
        rows.append(row)
        del index
    return rows


def train_scenes_once(api: Api, worker: LocalWorker, quick: bool) -> str:
    """A task trained on all of scenes train/ (30 a label with --quick); its id."""
    train = scenes_files("train")
    if quick:
        train = {label: files[:30] for label, files in train.items()}
    task = api.create_task("Scenes (similarity)")
    for name, files in train.items():
        label = api.create_label(name)
        api.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
        for path in files:
            api.upload(path.read_bytes(), labels=[label["id"]])
    say(f"similar: training on {sum(map(len, train.values()))} scenes images")
    train_once(api, worker, task["id"])
    return str(task["id"])


def scenes_precision(api: Api, task_id: str, quick: bool) -> dict[str, Any]:
    """precision@5 and 1-NN accuracy of val/ photos against the task's training images."""
    val = scenes_files("val")
    if quick:
        val = {label: files[:10] for label, files in val.items()}
    items = [(name, path) for name, files in val.items() for path in files]
    hits, first, seconds = 0, 0, []
    per_label: dict[str, list[int]] = {name: [0, 0] for name in val}
    for start in range(0, len(items), 10):
        batch = items[start : start + 10]
        records = [{"_base64": base64.b64encode(path.read_bytes()).decode()} for _, path in batch]
        begun = time.perf_counter()
        answer = api.post(f"task/{task_id}/similar/", {"records": records, "k": 5})
        seconds.append(time.perf_counter() - begun)
        for (name, _), record in zip(batch, answer["records"], strict=True):
            names = [label["name"] for label in record["similar"][0]["labels"]] if record["similar"] else []
            same = sum(name in [label["name"] for label in n["labels"]] for n in record["similar"])
            hits += same
            first += name in names
            per_label[name][0] += same
            per_label[name][1] += 5
    precision = hits / (5 * len(items))
    say(f"similar: precision@5 {precision:.4f} on {len(items)} scenes val photos")
    return {
        "images": len(items),
        "precision_at_5": precision,
        "nearest_accuracy": first / len(items),
        "indexed_images": answer["indexed_images"],
        "per_label": {name: v[0] / v[1] for name, v in per_label.items()},
        "request_10_records": summary(seconds),
    }


def similar_bench(api: Api | None, worker: LocalWorker | None, task_id: str | None, quick: bool) -> dict[str, Any]:
    """The whole part: scaling always, precision when scenes is present (``task_id``: a task
    already trained on scenes train/, else one is trained here)."""
    sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    results: dict[str, Any] = {"search": search_scaling(sizes, 5 if quick else 30), "k": K}
    # The machine is shared: the load says how much of its 2 cores the search had.
    results["load_average"] = round(os.getloadavg()[0], 1)
    if not SCENES.is_dir() or api is None or worker is None:
        say(f"similar: {SCENES} not found; precision@5 skipped (it needs the scenes data set)")
        results["precision"] = None
        return results
    results["precision"] = scenes_precision(api, task_id or train_scenes_once(api, worker, quick), quick)
    return results


def similar_section(results: dict[str, Any]) -> list[str]:
    similar = results.get("similar")
    if not similar:
        return []
    rows = [
        [
            f"{row['vectors']:,}",
            f"{row['index_mb']:,.0f}",
            f"{row['load_ms']:,.0f}" if row["load_ms"] is not None else "not measured",
            f"{row['batch 1']['median_ms']:.1f} ({row['batch 1']['p95_ms']:.1f})",
            f"{row['batch 10']['median_ms']:.1f} ({row['batch 10']['p95_ms']:.1f})",
            f"{row['scratch_mb batch 10']:.0f}",
        ]
        for row in similar["search"]
    ]
    measured = f"Measured {similar['date']} with `{similar['command']}`. " if "command" in similar else ""
    lines = [
        "## Similarity search",
        "",
        f"{measured}Exact cosine top-{similar['k']} over a version's descriptor file (`vision/descriptor_index.py`):",
        "float32 rows of 1,280 values scored by one matrix product, `np.argpartition` for the top k.",
        "Synthetic unit vectors; ms are median (p95) of the search alone; load: the file's bytes into",
        "the index (not measured at 1M: it would hold 2 x 5 GB at once); scratch: peak memory the",
        "search allocates beyond the index (tracemalloc).",
        *(
            [f"Load average (1 min) around the search runs: {similar['load_average']} on 2 shared cores."]
            if similar.get("load_average") is not None
            else []
        ),
        "",
        *table(["vectors", "index MB", "load ms", "1 query ms", "10 queries ms", "scratch MB"], rows),
        "",
    ]
    precision = similar.get("precision")
    if precision is None:
        return [*lines, f"precision@5 skipped: {SCENES} is not present on this machine.", ""]
    request = precision["request_10_records"]
    return [
        *lines,
        f"**precision@5 on scenes `val/` ({precision['images']} photos): {100 * precision['precision_at_5']:.1f} %**",
        f"(the share of each photo's 5 nearest training images, among {precision['indexed_images']}, that have its",
        f"label); the nearest image has its label for {100 * precision['nearest_accuracy']:.1f} %. Through",
        f"`POST task/{{id}}/similar/` over HTTP, 10 records a request: {request['median_ms']:.0f} ms median",
        f"({request['p95_ms']:.0f} ms p95), fetching, decoding and describing included.",
        "",
        *table(["label", "precision@5"], [[name, f"{100 * v:.0f} %"] for name, v in precision["per_label"].items()]),
        "",
    ]
