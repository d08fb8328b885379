"""One backbone, many heads (issue 16): classify latency for a task whose head is not in the
cache vs one whose head is, and memory per cached head, with 1,000 tasks; beside it the path
before, one whole ONNX session per task, for a few tasks.

Measured at the use-case level (``kestrel.usecases.classify.classify``: store look-ups, decoding
the record, the model) on a local data folder: 1,000 real tasks, each with a trained version
whose head is synthetic (random weights of a trained head's size, ``LABELS`` labels) and stored
as a training job stores it. The old path is measured at the model step only (read model.onnx,
build its session, run it), as ``ModelCache`` did before, on fused exports of the same kind of
head; the new path's model step (read the head file, parse it, backbone + head) is measured the
same way, so the two compare like for like."""

from __future__ import annotations

import base64
import gc
import json
import random
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import say, summary
from kestrel.composition import Ports, build_ports
from kestrel.domain.entities import LabelType, TaskType
from kestrel.store import labels, lifecycle, tasks
from kestrel.store.accounts import ensure_owner
from kestrel.store.keys import Space
from kestrel.store.version_files import HEAD_FILE, MODEL_FILE, model_prefix
from kestrel.store.versions import get_model_by_version
from kestrel.training.export import export_model
from kestrel.training.head import Head
from kestrel.usecases import classify as classify_module
from kestrel.usecases.classify import ClassifyCommand, classify, load_head
from kestrel.usecases.uploads import UploadLimits, upload_image
from kestrel.vision.backbone import ensure_backbone
from kestrel.vision.classifier import Backbones, HeadCache
from kestrel.vision.heads import ServedHead
from kestrel.vision.preprocess import preprocess
from kestrel.vision.session import create_session
from tests.conftest import local_settings
from tests.photos import distinct_photos, photo

#: Labels of each synthetic head: a 10-label task (1,280 x 10 float32 weights, 51 kB).
LABELS = 10


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _synthetic(seed: int, backbone_id: str, label_list: tuple[dict[str, str], ...]) -> ServedHead:
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.2, (1280, len(label_list))).astype(np.float32)
    bias = rng.normal(0, 0.5, len(label_list)).astype(np.float32)
    return ServedHead(weights, bias, False, backbone_id, label_list)


def _tasks(ports: Ports, count: int) -> tuple[Space, list[str], tuple[dict[str, str], ...]]:
    """``count`` trained tasks sharing ``LABELS`` labels of 20 images each; each task's version 1
    has its own synthetic head file."""
    owner = Space.default_of(ensure_owner(ports.items, "bench-heads@example.com").id)
    limits = UploadLimits.from_settings(ports.settings.limits)
    made = []
    for n, sample in enumerate(["chelsea", "coffee", "rocket", "astronaut", "motorcycle"] * 2):
        label = labels.create_label(ports.items, owner, f"label {n}", LabelType.CATEGORY, "", "")
        for data in distinct_photos(20, sample, side=32 + n):
            upload_image(ports.items, ports.blobs, owner, data, limits, label_ids=[label.id])
        made.append({"id": label.id, "name": label.name})
    label_list = tuple(made)
    backbone_id = ensure_backbone().backbone_id
    task_ids = []
    for n in range(count):
        task = tasks.create_task(ports.items, owner, f"Task {n}", "", TaskType.MULTI_CLASS)
        for label in label_list:
            tasks.attach_label(ports.items, owner, task.id, label["id"])
        model = lifecycle.create_version(ports.items, owner, task.id)
        prefix = model_prefix(owner.owner_id, model.id)
        ports.blobs.put(prefix + HEAD_FILE, _synthetic(n, backbone_id, label_list).to_bytes())
        ref = lifecycle.JobRef(owner, task.id, model.id)
        lifecycle.mark_trained(ports.items, ref, 0.9, {"accuracy": 0.9})
        task_ids.append(task.id)
        if (n + 1) % 200 == 0:
            say(f"heads: {n + 1}/{count} tasks made")
    return owner, task_ids, label_list


def _time(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def _use_case(ports: Ports, owner: Space, task_ids: list[str], record: dict[str, str]) -> dict[str, Any]:
    """Each task's first classify (its head not cached), each one paired with a classify of a
    task already cached, so that the two figures see the same load on a shared machine."""
    classify_module._serving = None
    models = classify_module.serving(ports)
    warm, task_ids = task_ids[0], task_ids[1:]
    classify(ports, ClassifyCommand(owner, warm, [record]))  # the backbone session is built, before any figure
    cached, misses, hits = [warm], [], []
    choose = random.Random(1).choice
    gc.collect()
    before_mb = rss_mb()
    for task_id in task_ids:
        hit = choose(cached)
        hits.append(_time(lambda t=hit: classify(ports, ClassifyCommand(owner, t, [record]))))  # type: ignore[misc]
        misses.append(_time(lambda t=task_id: classify(ports, ClassifyCommand(owner, t, [record]))))  # type: ignore[misc]
        cached.append(task_id)
    gc.collect()
    after_mb = rss_mb()
    assert len(models.heads) == len(task_ids) + 1 and models.heads.loads == len(task_ids) + 1, "all must stay cached"
    return {
        "tasks": len(task_ids),
        "miss": summary(misses),
        "hit": summary(hits),
        "rss_delta_mb": after_mb - before_mb,
        "per_head_kb": 1024 * (after_mb - before_mb) / len(task_ids),
        "accounted_per_head_kb": models.heads.bytes / len(models.heads) / 1024,
        "cache_mb": ports.settings.vision.head_cache_mb,
        "backbones": len(models.backbones.loaded),
    }


def _traced_per_head_kb(ports: Ports, prefixes: list[str]) -> float:
    """Bytes the allocators hold for the heads kept in a cache (numpy reports its arrays to
    tracemalloc): RSS can grow by less, when freed memory is reused."""
    cache = HeadCache(10**10)
    tracemalloc.start()
    try:
        for prefix in prefixes:
            cache.get(prefix, lambda p=prefix: load_head(ports.blobs, p))  # type: ignore[misc]
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return held / len(prefixes) / 1024


def _old_files(ports: Ports, label_list: tuple[dict[str, str], ...], count: int) -> list[str]:
    """Before: each task a whole ONNX file (backbone + head fused)."""
    backbone = ensure_backbone()
    keys = []
    for n in range(count):
        head = _synthetic(10_000 + n, backbone.backbone_id, label_list)
        key = f"bench-old/{n}/{MODEL_FILE}"
        ports.blobs.put(key, export_model(backbone, Head(head.weights, head.bias, False, 0.01)))
        keys.append(key)
    return keys


def _model_steps(ports: Ports, prefixes: list[str], old_keys: list[str], batch: np.ndarray) -> dict[str, Any]:
    """The model step alone, now (not cached: read + parse head.npz, then backbone + head;
    cached: backbone + head) and before (not cached: read model.onnx, build its session, run it;
    cached: run a session that has run before, as the LRU of 8 sessions kept them). All four are
    measured in turn in one loop, so that they see the same load on a shared machine."""
    backbones = Backbones()
    backbones.run(load_head(ports.blobs, prefixes[0]), batch)  # the backbone session is built
    create_session(ports.blobs.get(old_keys[0])).run(None, {"image": batch})  # onnxruntime warmed up
    outputs = ["probabilities", "descriptor"]
    new: dict[str, list[float]] = {"miss": [], "hit": []}
    old: dict[str, list[float]] = {"miss": [], "hit": []}
    sessions, heads = [], []
    choose = random.Random(2).choice
    gc.collect()
    old_before = old_after = rss_mb()
    for n, prefix in enumerate(prefixes[1:]):
        started = time.perf_counter()
        heads.append(load_head(ports.blobs, prefix))
        backbones.run(heads[-1], batch)
        new["miss"].append(time.perf_counter() - started)
        new["hit"].append(_time(lambda h=choose(heads): backbones.run(h, batch)))  # type: ignore[misc]
        if n < len(old_keys):
            started = time.perf_counter()
            sessions.append(create_session(ports.blobs.get(old_keys[n])))
            sessions[-1].run(outputs, {"image": batch})
            old["miss"].append(time.perf_counter() - started)
            if n == len(old_keys) - 1:
                gc.collect()
                old_after = rss_mb()  # the sessions, and as many heads (52 kB each)
        if n > 0:  # a session that has run before (not the one just built)
            session = sessions[(n + 1) % len(sessions)] if n < len(old_keys) else sessions[n % len(sessions)]
            old["hit"].append(_time(lambda s=session: s.run(outputs, {"image": batch})))  # type: ignore[misc]
    return {
        "new": {"miss": summary(new["miss"]), "hit": summary(new["hit"])},
        "old": {
            "tasks": len(old_keys),
            "miss": summary(old["miss"]),
            "hit": summary(old["hit"]),
            "per_session_mb": (old_after - old_before) / len(old_keys),
            "file_mb": len(ports.blobs.get(old_keys[0])) / 2**20,
        },
    }


def heads_study(data_dir: Path, quick: bool) -> dict[str, Any]:
    count = 1 + (100 if quick else 1000)  # one more: the task that warms the backbone up
    ports = build_ports(local_settings(data_dir))
    say(f"heads: making {count - 1} (+1) trained tasks with synthetic {LABELS}-label heads")
    owner, task_ids, label_list = _tasks(ports, count)
    picture = photo("chelsea", 224)
    record = {"_base64": base64.b64encode(picture).decode()}
    batch = preprocess(picture)[None]
    say("heads: classify through the use case, each task not cached, paired with a cached one")
    results: dict[str, Any] = {"labels": LABELS, "use_case": _use_case(ports, owner, task_ids, record)}
    prefixes = [model_prefix(owner.owner_id, get_model_by_version(ports.items, owner, t, 1).id) for t in task_ids]
    results["use_case"]["traced_per_head_kb"] = _traced_per_head_kb(ports, prefixes)
    say("heads: the model step alone, now and before")
    steps = _model_steps(ports, prefixes[:201], _old_files(ports, label_list, 3 if quick else 8), batch)
    results["model_step_new"], results["model_step_old"] = steps["new"], steps["old"]
    results["head_file_kb"] = len(ports.blobs.get(prefixes[0] + HEAD_FILE)) / 1024
    say(json.dumps(results))
    return results
