"""The tuning study of `make bench` (issue 7): what the runtime settings are worth, measured.

``measure_tuning(images, repeats, scenes)`` times, on this machine, in one process:

1. onnxruntime session options, each changed alone from Kestrel's ``create_session``: intra-op
   threads (1, 2, 0 = onnxruntime's choice), two inter-op threads in parallel execution mode,
   graph optimisation level (basic, extended; "all" is the default), the CPU memory arena off;
   batch 1 and batch 10; then session creation (cold start), including from a saved optimised
   model (``optimized_model_filepath``);
2. JPEG decoding with Pillow's ``draft`` mode against a full decode (150 px scenes photos, the
   given ~480 px photos, 1600 px photos), and how much the features move;
3. batching: ms per image at batch 1, 4, 10 and 32;
4. int8 backbones built with ``onnxruntime.quantization`` in a temporary folder (dynamic; static
   QDQ per-channel calibrated on tests/photos images only; the same with 7-bit weights, the
   setting for x86 CPUs without VNNI): latency, file size, session creation, how far the
   features move, and, when the development data set is given, scenes val accuracy with Kestrel's
   own head (fitted on train/ plain views) against the fp32 backbone.

Every comparison is interleaved: each round times every option once, in a shuffled order, so a
busy moment on the shared machine hits all options alike; figures are medians and p95 over the
rounds, and ratios are to Kestrel's current default measured in the same rounds.

``tuning_report(results)`` turns the result into the "## Tuning" section of docs/benchmarks.md,
with a verdict per study computed from the numbers by the rules below (``WIN_RATIO`` ...).
"""

from __future__ import annotations

import io
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

from bench.common import summary
from kestrel.training.embeddings import AUGMENTED_VIEWS
from kestrel.training.head import _fit, train_head
from kestrel.vision.backbone import Backbone, ensure_backbone
from kestrel.vision.preprocess import augment_views, preprocess
from kestrel.vision.session import DEFAULT_THREADS, create_session
from tests.photos import SAMPLE_NAMES, encode, photo, sample

#: A runtime option "wins" only if its median is at most this fraction of the default's at both
#: batch sizes (at least 10 % faster) and its p95 is no worse: smaller gains are within the noise
#: of a shared 2-core machine and not worth a change.
WIN_RATIO = 0.9
#: int8 must be "clearly faster": at most this fraction of fp32's median at batch 1 and 10 ...
INT8_SPEED_RATIO = 0.8
#: ... and lose at most this many points of scenes val accuracy.
INT8_MAX_ACCURACY_LOSS = 1.0
#: Saving the optimised model must cut session creation by at least this much (and this fraction)
#: to matter next to a Lambda cold start (about a second of Python imports alone).
COLD_START_MIN_SAVING_MS = 50.0
COLD_START_RATIO = 0.8
#: Draft mode stays if big JPEGs gain WIN_RATIO, small ones lose at most this (ms per image) or
#: 1 / WIN_RATIO, and no image's features move below this cosine similarity.
DRAFT_NOISE_MS = 0.25
DRAFT_MIN_COSINE = 0.99

DEFAULT = "default (create_session)"
BATCHES = (1, 4, 10, 32)
CALIBRATION_VIEWS = 3  # augmented views per calibration photo, besides its plain view
RESPLITS = 4  # extra random train/val splits of scenes for the paired int8 accuracy check

Level = ort.GraphOptimizationLevel


def _say(message: str) -> None:
    print(f"tuning: {message}", flush=True)


# -- timing ----------------------------------------------------------------------------------------


def _interleaved(
    calls: dict[str, Callable[[], object]], repeats: int, warmup: int = 2, seed: int = 0
) -> dict[str, list[float]]:
    """Seconds per call of each function: every round calls each once, in a shuffled order."""
    for function in calls.values():
        for _ in range(warmup):
            function()
    rng = np.random.default_rng(seed)
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for index in rng.permutation(len(names)):
            name = names[index]
            started = time.perf_counter()
            calls[name]()
            samples[name].append(time.perf_counter() - started)
    return samples


def _with_ratios(figures: dict[str, dict[str, float]], reference: str) -> dict[str, dict[str, float]]:
    base = figures[reference]
    for values in figures.values():
        values["ratio"] = values["median_ms"] / base["median_ms"]
        values["p95_ratio"] = values["p95_ms"] / base["p95_ms"]
    return figures


# -- sessions --------------------------------------------------------------------------------------


def _session(
    model: Path | bytes,
    *,
    threads: int = DEFAULT_THREADS,
    inter_threads: int = 1,
    parallel: bool = False,
    level: ort.GraphOptimizationLevel = Level.ORT_ENABLE_ALL,
    arena: bool = True,
    save_to: Path | None = None,
) -> ort.InferenceSession:
    """Kestrel's ``create_session`` settings with one thing changed (spinning stays off in every
    variant: spinning threads would steal the CPU from the next option timed in the round)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = inter_threads
    options.enable_cpu_mem_arena = arena
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


SESSION_VARIANTS: dict[str, dict[str, Any]] = {
    "intra_op_num_threads 1": {"threads": 1},
    "intra_op_num_threads 0 (onnxruntime picks)": {"threads": 0},
    "inter_op_num_threads 2, parallel execution": {"inter_threads": 2, "parallel": True},
    "graph optimisation basic": {"level": Level.ORT_ENABLE_BASIC},
    "graph optimisation extended": {"level": Level.ORT_ENABLE_EXTENDED},
    "CPU memory arena off": {"arena": False},
}


def _features(session: ort.InferenceSession, backbone: Backbone, pixels: np.ndarray, batch: int = 32) -> np.ndarray:
    parts = [
        session.run([backbone.features_name], {backbone.input_name: pixels[start : start + batch]})[0]
        for start in range(0, len(pixels), batch)
    ]
    return np.concatenate(parts).astype(np.float32)


def _difference(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """How far ``other``'s features are from ``reference``'s: max and mean |Δ|, lowest cosine."""
    delta = np.abs(other - reference)
    cosine = (other * reference).sum(axis=1) / (
        np.linalg.norm(other, axis=1) * np.linalg.norm(reference, axis=1) + 1e-12
    )
    return {
        "max_abs": float(delta.max()),
        "mean_abs": float(delta.mean()),
        "mean_abs_feature": float(np.abs(reference).mean()),
        "min_cosine": float(cosine.min()),
    }


def _latency(
    sessions: dict[str, ort.InferenceSession],
    backbone: Backbone,
    pixels: np.ndarray,
    repeats: int,
    batches: Sequence[int],
) -> dict[str, dict[str, dict[str, float]]]:
    """Per batch size, per session: ms per call (median, p95) and ratios to the first session."""
    calls: dict[str, Callable[[], object]] = {}
    for name, session in sessions.items():
        for batch in batches:
            feed = {backbone.input_name: pixels[:batch]}
            calls[f"{batch}|{name}"] = partial(session.run, [backbone.features_name], feed)
    samples = _interleaved(calls, repeats)
    reference = next(iter(sessions))
    result = {}
    for batch in batches:
        figures = {name: summary(samples[f"{batch}|{name}"]) for name in sessions}
        for values in figures.values():
            values["per_image_ms"] = values["median_ms"] / batch
        result[f"batch {batch}"] = _with_ratios(figures, reference)
    return result


def measure_session_options(backbone: Backbone, pixels: np.ndarray, repeats: int) -> dict[str, Any]:
    sessions = {DEFAULT: create_session(backbone.path)}
    for name, changes in SESSION_VARIANTS.items():
        sessions[name] = _session(backbone.path, **changes)
    reference = _features(sessions[DEFAULT], backbone, pixels[:4])
    same = {name: _difference(reference, _features(s, backbone, pixels[:4]))["max_abs"] for name, s in sessions.items()}
    return {"latency": _latency(sessions, backbone, pixels, repeats, (1, 10)), "features_max_abs": same}


def _first_run(make: Callable[[], ort.InferenceSession], backbone: Backbone, feed: dict[str, np.ndarray]) -> None:
    make().run([backbone.features_name], feed)


def measure_cold_start(backbone: Backbone, pixels: np.ndarray, repeats: int, folder: Path) -> dict[str, Any]:
    """Session creation, and creation + the first batch-1 run, from the file, from bytes (how the
    classify function loads a model) and from saved optimised models."""
    saved_all, saved_extended = folder / "optimised-all.onnx", folder / "optimised-extended.onnx"
    _session(backbone.path, save_to=saved_all)
    _session(backbone.path, level=Level.ORT_ENABLE_EXTENDED, save_to=saved_extended)
    model_bytes = backbone.path.read_bytes()
    makers: dict[str, Callable[[], ort.InferenceSession]] = {
        DEFAULT: lambda: create_session(backbone.path),
        "create_session(bytes), as classify loads a model": lambda: create_session(model_bytes),
        "saved after 'all', loaded with optimisations off": lambda: _session(saved_all, level=Level.ORT_DISABLE_ALL),
        "saved after 'extended' (portable), loaded with 'all'": lambda: _session(saved_extended),
    }
    feed = {backbone.input_name: pixels[:1]}
    calls: dict[str, Callable[[], object]] = {}
    for name, make in makers.items():
        calls[f"create|{name}"] = make
        calls[f"first run|{name}"] = partial(_first_run, make, backbone, feed)
    samples = _interleaved(calls, repeats, warmup=1)
    reference = _features(create_session(backbone.path), backbone, pixels[:4])
    result: dict[str, Any] = {
        "rounds": repeats,
        "create": _with_ratios({n: summary(samples[f"create|{n}"]) for n in makers}, DEFAULT),
        "create + first run": _with_ratios({n: summary(samples[f"first run|{n}"]) for n in makers}, DEFAULT),
        "features_max_abs": {
            n: _difference(reference, _features(m(), backbone, pixels[:4]))["max_abs"] for n, m in makers.items()
        },
        "file_mb": {
            "original": backbone.path.stat().st_size / 1e6,
            "after all": saved_all.stat().st_size / 1e6,
            "after extended": saved_extended.stat().st_size / 1e6,
        },
    }
    return result


def measure_batching(
    session: ort.InferenceSession, backbone: Backbone, pixels: np.ndarray, repeats: int
) -> dict[str, Any]:
    """ms per image at each batch size, and its ratio to batch 1."""
    by_batch = _latency({DEFAULT: session}, backbone, pixels, repeats, BATCHES)
    result = {}
    for batch in BATCHES:
        values = by_batch[f"batch {batch}"][DEFAULT]
        result[f"batch {batch}"] = {
            "call_median_ms": values["median_ms"],
            "call_p95_ms": values["p95_ms"],
            "per_image_ms": values["median_ms"] / batch,
            "per_image_p95_ms": values["p95_ms"] / batch,
            "per_image_p10_ms": values["p10_ms"] / batch,
        }
    single, single_p10 = result["batch 1"]["per_image_ms"], result["batch 1"]["per_image_p10_ms"]
    for values in result.values():
        values["ratio"] = values["per_image_ms"] / single
        values["p10_ratio"] = values["per_image_p10_ms"] / single_p10
    return result


# -- JPEG draft mode -------------------------------------------------------------------------------


def _big_photos(side: int) -> list[bytes]:
    """tests/photos samples enlarged to ``side`` px on the long side, JPEG quality 90."""
    out = []
    for name in SAMPLE_NAMES:
        image = sample(name)
        scale = side / max(image.size)
        enlarged = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
        out.append(encode(enlarged, quality=90))
    return out


def _scenes_photos(scenes: Path | None, per_label: int = 2) -> tuple[str, list[bytes]]:
    if scenes is not None:
        files = [
            path for label in sorted((scenes / "train").iterdir()) for path in sorted(label.glob("*.jpg"))[:per_label]
        ]
        if files:
            return "150 px (scenes train/ photos)", [path.read_bytes() for path in files]
    return "150 px (tests/photos samples)", [photo(name, 150) for name in SAMPLE_NAMES]


def _size_range(images: Sequence[bytes]) -> str:
    sides = [max(Image.open(io.BytesIO(data)).size) for data in images]
    low, high = min(sides), max(sides)
    return f"{low} px" if low == high else f"{low}-{high} px"


def _preprocess_all(images: Sequence[bytes], draft: bool) -> None:
    for data in images:
        preprocess(data, draft=draft)


def measure_draft(
    images: Sequence[bytes], scenes: Path | None, backbone: Backbone, session: ort.InferenceSession, repeats: int
) -> dict[str, Any]:
    small_name, small = _scenes_photos(scenes)
    sets = {
        small_name: small,
        f"{_size_range(images)} (the latency photos)": list(images),
        "1600 px (tests/photos samples, enlarged)": _big_photos(1600),
    }
    calls: dict[str, Callable[[], object]] = {}
    for name, batch in sets.items():
        for draft in (True, False):
            calls[f"{draft}|{name}"] = partial(_preprocess_all, batch, draft)
    samples = _interleaved(calls, repeats)
    result: dict[str, Any] = {}
    for name, batch in sets.items():
        drafted = np.stack([preprocess(data, draft=True) for data in batch])
        full = np.stack([preprocess(data, draft=False) for data in batch])
        on, off = summary(samples[f"True|{name}"], len(batch)), summary(samples[f"False|{name}"], len(batch))
        result[name] = {
            "images": len(batch),
            "draft": on,
            "full decode": off,
            "ratio": on["median_ms"] / off["median_ms"],
            "pixels_max_abs_levels": float(np.abs(drafted - full).max() * 128),
            "pixels_mean_abs_levels": float(np.abs(drafted - full).mean() * 128),
            "features": _difference(_features(session, backbone, full), _features(session, backbone, drafted)),
        }
    return result


# -- int8 ------------------------------------------------------------------------------------------


def _calibration_inputs(backbone: Backbone) -> list[dict[str, np.ndarray]]:
    """tests/photos only: each sample photo's plain input and a few augmented views."""
    arrays: list[np.ndarray] = []
    for index, name in enumerate(SAMPLE_NAMES):
        data = photo(name, 480)
        arrays.append(preprocess(data)[None])
        arrays.extend(view[None] for view in augment_views(data, CALIBRATION_VIEWS, seed=index))
    return [{backbone.input_name: array} for array in arrays]


def build_int8(backbone: Backbone, folder: Path) -> dict[str, Any]:
    """Quantised copies of the backbone in ``folder``: their paths, build seconds, sizes."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self._inputs = iter(_calibration_inputs(backbone))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._inputs, None)

    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the quantiser logs every node it leaves alone
    try:
        started = time.perf_counter()
        prepared = folder / "prepared.onnx"
        # The recommended first step: shape inference and onnxruntime's basic graph optimisations.
        quant_pre_process(str(backbone.path), str(prepared), skip_symbolic_shape=True)
        built: dict[str, Any] = {"prepare_seconds": time.perf_counter() - started, "models": {}}

        def timed_build(name: str, build: Callable[[Path], None], settings: str) -> None:
            path = folder / f"{name.split()[0]}-{len(built['models'])}.onnx"
            begun = time.perf_counter()
            build(path)
            built["models"][name] = {
                "path": str(path),
                "settings": settings,
                "build_seconds": time.perf_counter() - begun,
                "file_mb": path.stat().st_size / 1e6,
            }

        # Dynamic: weights quantised ahead, activations at run time. uint8 weights: with the default
        # int8 weights the model ran 3x slower still (77 vs 25 ms at batch 1, checked once by hand)
        # and its features were further from fp32's (lowest cosine 0.76 vs 0.81).
        timed_build(
            "int8 dynamic",
            lambda path: quantize_dynamic(str(prepared), str(path), weight_type=QuantType.QUInt8),
            "quantize_dynamic, uint8 weights",
        )
        cache = folder / "calibration.json"  # the first static build calibrates, the second reuses

        def static(path: Path, reduce_range: bool) -> None:
            quantize_static(
                str(prepared),
                str(path),
                Photos(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=reduce_range,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                calibration_cache_path=cache,
            )

        calibration = f"MinMax on {len(_calibration_inputs(backbone))} tests/photos inputs"
        timed_build(
            "int8 static QDQ",
            lambda path: static(path, False),
            f"quantize_static QDQ, per-channel, uint8 activations, int8 weights, {calibration}",
        )
        timed_build(
            "int8 static QDQ, 7-bit weights",
            lambda path: static(path, True),
            "the same with reduce_range=True (advised for x86 CPUs without VNNI)",
        )
    finally:
        quiet.setLevel(level)
    return built


def _scenes_split(scenes: Path, split: str) -> tuple[list[str], list[bytes], np.ndarray]:
    labels = sorted(folder.name for folder in (scenes / split).iterdir() if folder.is_dir())
    files = [
        (index, path) for index, label in enumerate(labels) for path in sorted((scenes / split / label).glob("*.jpg"))
    ]
    return labels, [path.read_bytes() for _, path in files], np.array([index for index, _ in files])


def measure_int8(
    backbone: Backbone, pixels: np.ndarray, repeats: int, scenes: Path | None, folder: Path
) -> dict[str, Any]:
    built = build_int8(backbone, folder)
    models = {"fp32": backbone.path} | {name: Path(info["path"]) for name, info in built["models"].items()}
    sessions = {name: create_session(path) for name, path in models.items()}
    result: dict[str, Any] = {"build": built, "latency": _latency(sessions, backbone, pixels, repeats, (1, 10))}
    creation = _interleaved(
        {name: partial(create_session, path) for name, path in models.items()}, max(5, repeats // 3), 1
    )
    result["create"] = _with_ratios({name: summary(values) for name, values in creation.items()}, "fp32")
    reference = _features(sessions["fp32"], backbone, pixels)
    result["features"] = {name: _difference(reference, _features(s, backbone, pixels)) for name, s in sessions.items()}
    if scenes is None:
        result["accuracy"] = None
        return result
    labels, train_images, train_y = _scenes_split(scenes, "train")
    val_labels, val_images, val_y = _scenes_split(scenes, "val")
    if labels != val_labels:
        raise ValueError(f"scenes train/ and val/ have different labels: {labels} / {val_labels}")
    train_x = np.stack([preprocess(data) for data in train_images])
    val_x = np.stack([preprocess(data) for data in val_images])
    accuracy: dict[str, Any] = {
        "train_images": len(train_x),
        "val_images": len(val_x),
        "labels": labels,
        "views": "plain view only (no augmented views), Kestrel's train_head with its CV-chosen L2",
        "backbones": {},
    }
    fp32_predictions, fp32_val = np.empty(0), np.empty(0)
    pooled: dict[str, tuple[np.ndarray, float]] = {}
    for name, session in sessions.items():
        begun = time.perf_counter()
        train_f, val_f = _features(session, backbone, train_x), _features(session, backbone, val_x)
        embedded = time.perf_counter() - begun
        head = train_head([row[None] for row in train_f], train_y, len(labels), False)
        predicted = head.probabilities(val_f).argmax(axis=1)
        if name == "fp32":
            fp32_predictions, fp32_val = predicted, val_f
        value = float((predicted == val_y).mean())
        accuracy["backbones"][name] = {
            "accuracy": value,
            "correct": int((predicted == val_y).sum()),
            "points_vs_fp32": 100 * (value - accuracy["backbones"]["fp32"]["accuracy"]) if name != "fp32" else 0.0,
            "changed_predictions": int((predicted != fp32_predictions).sum()),
            # The discordant pairs: how many val images only fp32, or only this backbone, gets right.
            "only_fp32_right": int(((fp32_predictions == val_y) & (predicted != val_y)).sum()),
            "only_this_right": int(((fp32_predictions != val_y) & (predicted == val_y)).sum()),
            "strength": head.strength,
            "embed_seconds": embedded,
            "val_features": _difference(fp32_val, val_f),
        }
        pooled[name] = (np.concatenate([train_f, val_f]), head.strength)
        _say(
            f"scenes val accuracy with {name}: {100 * value:.1f} % "
            f"({embedded:.1f} s to embed {len(train_x) + len(val_x)} images)"
        )
    accuracy["resplits"] = _resplits(pooled, np.concatenate([train_y, val_y]), val_y, len(labels))
    result["accuracy"] = accuracy
    return result


def _resplits(
    pooled: dict[str, tuple[np.ndarray, float]], targets: np.ndarray, val_y: np.ndarray, outputs: int
) -> dict[str, Any]:
    """One val split is 300 images (1 point = 3 of them): refit on RESPLITS other random stratified
    splits of train/ + val/ (the same sizes), paired, each backbone with the L2 strength its CV chose
    above, and report the mean and spread of the difference to fp32."""
    per_label = np.bincount(val_y, minlength=outputs)
    points: dict[str, list[float]] = {name: [] for name in pooled}
    for split in range(RESPLITS):
        rng = np.random.default_rng(1000 + split)
        held = np.concatenate(
            [rng.permutation(np.flatnonzero(targets == label))[: per_label[label]] for label in range(outputs)]
        )
        kept = np.setdiff1d(np.arange(len(targets)), held)
        scores = {}
        for name, (features, strength) in pooled.items():
            head, _ = _fit([row[None] for row in features[kept]], targets[kept], outputs, False, strength)
            scores[name] = 100 * float((head.probabilities(features[held]).argmax(axis=1) == targets[held]).mean())
        for name in pooled:
            points[name].append(scores[name] - scores["fp32"])
    return {
        "splits": RESPLITS,
        "points_vs_fp32": points,
        "mean_points": {name: float(np.mean(values)) for name, values in points.items()},
        "sd_points": {
            name: float(np.std(values, ddof=1)) if len(values) > 1 else 0.0 for name, values in points.items()
        },
    }


# -- the study -------------------------------------------------------------------------------------


def _cpu() -> dict[str, Any]:
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "asimddp")
    return {"model": model, "cores": os.cpu_count(), "flags": [flag for flag in wanted if flag in flags]}


def _is_quantised(path: Path) -> bool:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return any(node.op_type in ("QuantizeLinear", "DynamicQuantizeLinear") for node in model.graph.node)


def measure_tuning(images: list[bytes], repeats: int, scenes: Path | None) -> dict[str, Any]:
    """The whole study (see the module docstring); JSON-serialisable."""
    started = time.perf_counter()
    backbone = ensure_backbone()
    results: dict[str, Any] = {
        "onnxruntime": ort.__version__,
        "cpu": _cpu(),
        "repeats": repeats,
        "backbone_id": backbone.backbone_id,
        "images": len(images),
    }
    tiled = [images[index % len(images)] for index in range(max(BATCHES))]
    pixels = np.stack([preprocess(data) for data in tiled])
    scenes = scenes if scenes is not None and (scenes / "train").is_dir() and (scenes / "val").is_dir() else None
    results["scenes"] = str(scenes) if scenes is not None else None
    results["backbone_quantised"] = _is_quantised(backbone.path)
    default = create_session(backbone.path)
    with tempfile.TemporaryDirectory(prefix="kestrel-tuning-") as tmp:
        folder = Path(tmp)
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("session_options", lambda: measure_session_options(backbone, pixels, repeats)),
            ("cold_start", lambda: measure_cold_start(backbone, pixels, max(5, repeats), folder)),
            ("draft", lambda: measure_draft(images, scenes, backbone, default, max(5, repeats // 2))),
            ("batching", lambda: measure_batching(default, backbone, pixels, repeats)),
            ("int8", lambda: measure_int8(backbone, pixels, repeats, scenes, folder)),
        ]
        for name, step in steps:
            begun, load = time.perf_counter(), os.getloadavg()[0]
            results[name] = step()
            results.setdefault("step_seconds", {})[name] = time.perf_counter() - begun
            # The 1-minute load average before and after: how busy the shared machine was.
            results.setdefault("load_average", {})[name] = [load, os.getloadavg()[0]]
            _say(f"{name} done in {time.perf_counter() - begun:.1f} s")
    results["verdicts"] = verdicts(results)
    results["seconds"] = time.perf_counter() - started
    return results


# -- verdicts --------------------------------------------------------------------------------------


def _session_verdict(results: dict[str, Any]) -> dict[str, Any]:
    latency = results["session_options"]["latency"]
    wins, notes = [], []
    for name in SESSION_VARIANTS:
        cells = [latency[batch][name] for batch in ("batch 1", "batch 10")]
        if all(c["ratio"] <= WIN_RATIO and c["p95_ratio"] <= 1.0 for c in cells):
            wins.append(name)
        notes.append(f"{name} x{cells[0]['ratio']:.2f} / x{cells[1]['ratio']:.2f}")
    if wins:
        return {
            "chosen": wins[0],
            "wins": wins,
            "why": f"at least {100 * (1 - WIN_RATIO):.0f} % faster than the default at batch 1 and 10: "
            + ", ".join(wins),
        }
    return {
        "chosen": "keep create_session's settings (all optimisations, 2 intra-op threads, 1 inter-op, sequential, "
        "arena on, no spinning)",
        "wins": [],
        "why": f"no single change is {100 * (1 - WIN_RATIO):.0f} % faster at both batch sizes "
        f"(median ratio to the default, batch 1 / batch 10: {'; '.join(notes)})",
    }


def _cold_start_verdict(results: dict[str, Any]) -> dict[str, Any]:
    create = results["cold_start"]["create"]
    base = create[DEFAULT]["median_ms"]
    saved = {name: values for name, values in create.items() if name.startswith("saved")}
    best_name = min(saved, key=lambda name: saved[name]["median_ms"])
    best = saved[best_name]
    saving = base - best["median_ms"]
    if saving >= COLD_START_MIN_SAVING_MS and best["ratio"] <= COLD_START_RATIO:
        return {"chosen": best_name, "why": f"saves {saving:.0f} ms of session creation ({base:.0f} ms today)"}
    return {
        "chosen": "keep creating sessions from the plain model",
        "why": f"creating a session takes {base:.0f} ms; the best saved optimised model ({best_name}) changes that by "
        f"{-saving:+.0f} ms (x{best['ratio']:.2f}), under the {COLD_START_MIN_SAVING_MS:.0f} ms that would matter next "
        "to a Lambda cold start, for a second file per model to build, ship and keep in step",
    }


def _draft_verdict(results: dict[str, Any]) -> dict[str, Any]:
    draft = results["draft"]
    big = next(values for name, values in draft.items() if name.startswith("1600"))
    small = [values for name, values in draft.items() if not name.startswith("1600")]
    worst_small = max(values["ratio"] for values in small)
    # Below 512 px draft mode changes nothing but the code path: "not slowed" allows the noise.
    slower_ms = max(values["draft"]["median_ms"] - values["full decode"]["median_ms"] for values in small)
    worst_cosine = min(values["features"]["min_cosine"] for values in draft.values())
    not_slowed = worst_small <= 1 / WIN_RATIO or slower_ms <= DRAFT_NOISE_MS
    if big["ratio"] <= WIN_RATIO and not_slowed and worst_cosine >= DRAFT_MIN_COSINE:
        return {
            "chosen": "keep draft mode on (preprocess's default)",
            "why": f"1600 px JPEGs decode x{big['ratio']:.2f} as fast; smaller ones are not slowed "
            f"(worst x{worst_small:.2f}, {slower_ms:+.2f} ms); the features barely move (lowest cosine "
            f"{worst_cosine:.4f})",
        }
    return {
        "chosen": "review draft mode",
        "why": f"1600 px x{big['ratio']:.2f}, small photos worst x{worst_small:.2f}, lowest cosine {worst_cosine:.4f}",
    }


def _batching_verdict(results: dict[str, Any]) -> dict[str, Any]:
    batching = results["batching"]
    ratios = ", ".join(
        f"{name} x{values['ratio']:.2f} (p10 x{values['p10_ratio']:.2f})" for name, values in batching.items()
    )
    return {
        "chosen": "no runtime change: batching is the caller's (classify runs a request's records as one batch; "
        f"training runs each image's {1 + AUGMENTED_VIEWS} views as one batch)",
        "why": f"ms per image relative to batch 1: {ratios}",
    }


def _int8_verdict(results: dict[str, Any]) -> dict[str, Any]:
    int8 = results["int8"]
    accuracy = int8["accuracy"]
    rows: dict[str, dict[str, Any]] = {}
    for name in int8["build"]["models"]:
        speed = [int8["latency"][batch][name]["ratio"] for batch in ("batch 1", "batch 10")]
        fast = all(ratio <= INT8_SPEED_RATIO for ratio in speed)
        loss = None if accuracy is None else -accuracy["backbones"][name]["points_vs_fp32"]
        mean_loss = None if accuracy is None else -accuracy["resplits"]["mean_points"][name]
        # Within the limit on the shipped split AND on average over the extra splits.
        keeps = loss is not None and mean_loss is not None and max(loss, mean_loss) <= INT8_MAX_ACCURACY_LOSS
        rows[name] = {
            "speed_ratios": speed,
            "clearly_faster": fast,
            "points_lost": loss,
            "mean_points_lost_resplits": mean_loss,
            "keeps_accuracy": keeps,
        }
    passing = [name for name, row in rows.items() if row["clearly_faster"] and row["keeps_accuracy"]]

    def describe(name: str) -> str:
        row = rows[name]
        lost = (
            "accuracy not measured"
            if row["points_lost"] is None
            else f"{-row['points_lost']:+.1f} points ({-row['mean_points_lost_resplits']:+.1f} over resplits)"
        )
        return f"{name}: x{row['speed_ratios'][0]:.2f} / x{row['speed_ratios'][1]:.2f} latency, {lost}"

    summary = "; ".join(describe(name) for name in rows)
    rule = (
        f"adopt only if at most {INT8_MAX_ACCURACY_LOSS:g} point of scenes val accuracy is lost (on val/ and on "
        f"average over {RESPLITS} resplits) AND latency is at most "
        f"x{INT8_SPEED_RATIO:g} of fp32 at batch 1 and 10"
    )
    if accuracy is None:
        return {
            "meets_rule": [],
            "rows": rows,
            "chosen": "fp32 (int8 not judged)",
            "why": f"{rule}; no data set to measure accuracy on. {summary}",
        }
    if passing:
        flags = ", ".join(results["cpu"]["flags"]) or "no AVX2/VNNI/dot-product flags"
        shipped = "int8 ships" if results["backbone_quantised"] else "fp32 still ships"
        return {
            "meets_rule": passing,
            "rows": rows,
            "chosen": f"{shipped}; {passing[0]} meets the rule on this CPU ({flags})",
            "why": f"{rule}. {summary}. int8 speed and accuracy depend on the CPU's integer dot-product "
            "instructions (VNNI on x86, dotprod on arm64), so they must be confirmed on the CPUs Kestrel "
            "deploys to before the backbone changes",
        }
    return {"meets_rule": [], "rows": rows, "chosen": "fp32", "why": f"{rule}; none does. {summary}"}


def verdicts(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "session_options": _session_verdict(results),
        "cold_start": _cold_start_verdict(results),
        "draft": _draft_verdict(results),
        "batching": _batching_verdict(results),
        "int8": _int8_verdict(results),
    }


# -- report ----------------------------------------------------------------------------------------


def _ms(values: dict[str, float]) -> str:
    return f"{values['median_ms']:.1f} ({values['p95_ms']:.1f})"


def tuning_report(results: dict[str, Any]) -> list[str]:
    """The "## Tuning" section of docs/benchmarks.md (markdown lines)."""
    cpu = results["cpu"]
    verdict = results["verdicts"]
    lines = [
        "## Tuning",
        "",
        f"onnxruntime {results['onnxruntime']} on {cpu['model']} ({cpu['cores']} cores; "
        f"{', '.join(cpu['flags']) or 'no AVX2/VNNI/dot-product flags'}); `bench/tuning.py`, "
        f"{results['seconds']:.0f} s. Each comparison is interleaved (every round times each option once, in a "
        f"shuffled order; {results['repeats']} rounds unless noted), so a busy moment hits all options alike. "
        "Cells are median (p95) ms; x is the ratio of medians to the current default in the same rounds.",
        *(
            [
                f"**The machine was busy** (load average above its {cpu['cores']} cores): absolute times are "
                "inflated and long calls (big batches) suffer most; compare ratios, and p10 where given.",
            ]
            if max(max(pair) for pair in results["load_average"].values()) > (cpu["cores"] or 1)
            else []
        ),
        "1-minute load average before → after each study (2 = both cores busy): "
        + ", ".join(f"{name.replace('_', ' ')} {a:.1f} → {b:.1f}" for name, (a, b) in results["load_average"].items())
        + ".",
        "",
        "| study | chosen | why |",
        "|---|---|---|",
        *[f"| {name.replace('_', ' ')} | {value['chosen']} | {value['why']} |" for name, value in verdict.items()],
        "",
    ]

    options = results["session_options"]
    lines += [
        "### onnxruntime session options",
        "",
        "Each row changes one thing from `create_session` (ALL graph optimisations, 2 intra-op threads, 1 inter-op,",
        "sequential, memory arena on, spinning off; spinning stays off in every row). Backbone alone, preprocessed",
        "input. Features max |Δ| is against the default session's.",
        "",
        "| option | batch 1 ms | x | batch 10 ms | x | features max abs Δ |",
        "|---|---|---|---|---|---|",
    ]
    for name in options["latency"]["batch 1"]:
        one, ten = options["latency"]["batch 1"][name], options["latency"]["batch 10"][name]
        lines.append(
            f"| {name} | {_ms(one)} | {one['ratio']:.2f} | {_ms(ten)} | {ten['ratio']:.2f} | "
            f"{options['features_max_abs'][name]:.1e} |"
        )
    cold = results["cold_start"]
    files = cold["file_mb"]
    lines += [
        "",
        f"### Session creation (cold start), {results['cold_start']['rounds']} rounds",
        "",
        "An optimised model is saved with `optimized_model_filepath`; one saved after the 'all' level holds",
        "layouts for this CPU's instruction set (onnxruntime warns it must run where it was made), one saved after",
        "'extended' is portable (the layout passes then run again when it is loaded with 'all').",
        f"Files: original {files['original']:.1f} MB, after 'all' "
        f"{files['after all']:.1f} MB, after 'extended' {files['after extended']:.1f} MB. A cold start also pays",
        "the first run, which sets up the memory arena and the thread pool.",
        "",
        "| how the session is made | create ms | x | create + first batch-1 run ms | x | features max abs Δ |",
        "|---|---|---|---|---|---|",
    ]
    for name, values in cold["create"].items():
        first = cold["create + first run"][name]
        lines.append(
            f"| {name} | {_ms(values)} | {values['ratio']:.2f} | {_ms(first)} | {first['ratio']:.2f} | "
            f"{cold['features_max_abs'][name]:.1e} |"
        )
    lines += [
        "",
        f"### JPEG draft mode, {max(5, results['repeats'] // 2)} rounds",
        "",
        "`preprocess(data, draft=True)` (the default) against `draft=False`: decode + resize + crop + normalise, ms",
        "per image. Draft mode only acts when the shorter side is at least 512 px (it never decodes below 256 px).",
        "Pixel Δ in grey levels; features compared with the backbone.",
        "",
        "| photos | images | draft ms/img | full decode ms/img | x | pixels mean / max abs Δ | "
        "features mean / max abs Δ | lowest cosine |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, values in results["draft"].items():
        features = values["features"]
        lines.append(
            f"| {name} | {values['images']} | {_ms(values['draft'])} | {_ms(values['full decode'])} | "
            f"{values['ratio']:.2f} | {values['pixels_mean_abs_levels']:.2f} / {values['pixels_max_abs_levels']:.1f} | "
            f"{features['mean_abs']:.4f} / {features['max_abs']:.3f} | {features['min_cosine']:.5f} |"
        )
    lines += [
        "",
        "### Batching",
        "",
        "The backbone on preprocessed input, default session.",
        "",
        "| batch | ms per call | ms per image (p95) | x batch 1 per image | ms per image, p10 | x batch 1, p10 |",
        "|---|---|---|---|---|---|",
    ]
    for name, values in results["batching"].items():
        lines.append(
            f"| {name.split()[1]} | {values['call_median_ms']:.1f} | {values['per_image_ms']:.2f} "
            f"({values['per_image_p95_ms']:.2f}) | {values['ratio']:.2f} | {values['per_image_p10_ms']:.2f} | "
            f"{values['p10_ratio']:.2f} |"
        )
    lines += _int8_report(results)
    return lines


def _int8_report(results: dict[str, Any]) -> list[str]:
    int8 = results["int8"]
    build = int8["build"]
    accuracy = int8["accuracy"]
    lines = [
        "",
        "### int8 backbone",
        "",
        "Built in a temporary folder with `onnxruntime.quantization` after `quant_pre_process` "
        f"({build['prepare_seconds']:.1f} s); static models calibrated on tests/photos images only. Features Δ on "
        f"the {results['images']} latency photos against fp32 (mean abs fp32 feature "
        f"{int8['features']['fp32']['mean_abs_feature']:.3f}).",
        "",
        "| backbone | how | MB | build s | batch 1 ms | x | batch 10 ms | x | create ms | "
        "features mean / max abs Δ | lowest cosine |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    models = {"fp32": {"settings": "Kestrel's backbone", "file_mb": None, "build_seconds": None}} | build["models"]
    for name, info in models.items():
        one, ten = int8["latency"]["batch 1"][name], int8["latency"]["batch 10"][name]
        features = int8["features"][name]
        size = "" if info["file_mb"] is None else f"{info['file_mb']:.1f}"
        seconds = "" if info["build_seconds"] is None else f"{info['build_seconds']:.1f}"
        lines.append(
            f"| {name} | {info['settings']} | {size} | {seconds} | {_ms(one)} | {one['ratio']:.2f} | {_ms(ten)} | "
            f"{ten['ratio']:.2f} | {int8['create'][name]['median_ms']:.0f} | {features['mean_abs']:.4f} / "
            f"{features['max_abs']:.3f} | {features['min_cosine']:.4f} |"
        )
    lines.append("")
    if accuracy is None:
        lines += ["Accuracy: skipped, the development data set (scenes) is not present on this machine.", ""]
    else:
        lines += [
            f"Accuracy on scenes `val/` ({accuracy['val_images']} images; 1 point = "
            f"{accuracy['val_images'] / 100:g} images), head fitted on `train/` ({accuracy['train_images']} images), "
            f"{accuracy['views']}. Resplits: train/ + val/ pooled and split {accuracy['resplits']['splits']} more "
            "times at random with the same sizes per label, each backbone refitted with the L2 its CV chose, the "
            "difference to fp32 paired per split:",
            "",
            "| backbone | val accuracy | points vs fp32 | resplits: points vs fp32 (mean ± sd) | predictions changed "
            "vs fp32 | right only with fp32 / only with this | L2 chosen | embed s (train + val) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, values in accuracy["backbones"].items():
            resplit = (
                f"{accuracy['resplits']['mean_points'][name]:+.1f} ± {accuracy['resplits']['sd_points'][name]:.1f}"
            )
            lines.append(
                f"| {name} | {100 * values['accuracy']:.1f} % | {values['points_vs_fp32']:+.1f} | {resplit} | "
                f"{values['changed_predictions']} | {values['only_fp32_right']} / {values['only_this_right']} | "
                f"{values['strength']:g} | {values['embed_seconds']:.1f} |"
            )
        lines.append("")
    verdict = results["verdicts"]["int8"]
    lines += [f"**Rule:** {verdict['why']}", "", f"Backbone in use: `{results['backbone_id']}`.", ""]
    return lines
