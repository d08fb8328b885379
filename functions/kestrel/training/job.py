"""Train one model version from its manifest: embed, fit the head, evaluate, export, describe."""

from __future__ import annotations

import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from kestrel.domain.training_rules import split_order
from kestrel.ports.blobs import BlobStore
from kestrel.training.embeddings import AUGMENTED_VIEWS, Embedder, ImageRef
from kestrel.training.evaluation import (
    CV_FOLDS,
    HOLDOUT,
    HOLDOUT_AND_CV,
    cross_validate,
    needs_cross_validation,
    out_of_fold_predictions,
    summary_sentence,
)
from kestrel.training.export import DESCRIPTOR, PROBABILITIES, export_model
from kestrel.training.head import DEFAULT_OPTIONS, Head, refit, train_head
from kestrel.training.metrics import evaluate_multi_class, evaluate_multi_label, wilson_interval
from kestrel.training.mislabelled import possibly_mislabelled
from kestrel.vision.backbone import Backbone, ensure_backbone
from kestrel.vision.descriptor_index import DescriptorIndex
from kestrel.vision.heads import ServedHead
from kestrel.vision.preprocess import PREPROCESSING_ID, describe, preprocess
from kestrel.vision.session import create_session

Progress = Callable[[str], None]


class TrainingError(Exception):
    """The data cannot make a model; the message is the failure reason the owner reads."""


@dataclass(frozen=True)
class TrainedModel:
    model: bytes  # the ONNX file: backbone + head fused (what the versions API exports)
    card: dict[str, Any]
    head: bytes  # the head alone (kestrel.vision.heads): what classify runs on the shared backbone
    descriptors: bytes = b""  # every image's descriptor (vision.descriptor_index): similarity search


def _targets(manifest: dict[str, Any], rows: list[dict[str, Any]], multi_label: bool) -> np.ndarray:
    index = {label["id"]: i for i, label in enumerate(manifest["labels"])}
    if multi_label:
        targets = np.zeros((len(rows), len(index)), dtype=np.float64)
        for n, row in enumerate(rows):
            for label_id in row["labels"]:
                targets[n, index[label_id]] = 1.0
        return targets
    return np.array([index[row["labels"][0]] for row in rows], dtype=int)


def _ordered(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The manifest's images in content order: whatever the ids and the upload order, the same
    photos reach the head in the same order (the folds and the fit follow it)."""
    return sorted(images, key=lambda row: split_order(str(row["sha256"]), str(row["id"])))


def train(manifest: dict[str, Any], blobs: BlobStore, say: Progress = print) -> TrainedModel:
    started = time.perf_counter()
    multi_label = manifest["task_type"] == "multi_label"
    labels = manifest["labels"]
    images = _ordered(manifest["images"])
    train_rows = [row for row in images if row["split"] == "train"]
    test_rows = [row for row in images if row["split"] == "test"]
    if not train_rows or not test_rows:
        raise TrainingError(f"need images in both parts; got {len(train_rows)} to train and {len(test_rows)} to test")

    say(f"backbone: loading ({len(images)} images, {len(labels)} labels, {manifest['task_type']})")
    backbone = ensure_backbone()
    session = create_session(backbone.path)
    embedder = Embedder(backbone, session, blobs)
    last_report = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - last_report[0] > 2.0:
            last_report[0] = now
            say(f"embedding: {done}/{total} images ({embedder.computed} new, {done - embedder.computed} cached)")

    ordered = train_rows + test_rows
    phases = _Phases()
    views = embedder.embed_all([ImageRef(row["key"], row["sha256"]) for row in ordered], progress)
    phases.end("embedding")
    train_views, test_views = views[: len(train_rows)], views[len(train_rows) :]
    targets = _targets(manifest, ordered, multi_label)
    train_targets, test_targets = targets[: len(train_rows)], targets[len(train_rows) :]

    say(f"head: fitting {'sigmoid' if multi_label else 'softmax'} regression on {len(train_rows)} images")
    evaluated = train_head(train_views, train_targets, len(labels), multi_label)
    phases.end("head")
    evaluation = _evaluate(evaluated, test_views, test_targets, [label["id"] for label in labels], test_rows)
    say(
        f"evaluation: accuracy {evaluation['accuracy']:.4f} on {len(test_rows)} test images "
        f"(95 % interval {evaluation['accuracy_interval'][0]:.3f}-{evaluation['accuracy_interval'][1]:.3f})"
    )
    label_ids, ids = [label["id"] for label in labels], [row["id"] for row in ordered]
    cross_validation, out_of_fold = None, None
    if needs_cross_validation(test_targets, len(labels), multi_label):
        say(f"cross-validation: {CV_FOLDS} folds over all {len(ordered)} images (the test part is small)")
        cross_validation, out_of_fold = cross_validate(views, targets, label_ids, ids, multi_label, DEFAULT_OPTIONS)
        say(f"cross-validation: accuracy {cross_validation['accuracy']:.4f}")
    phases.end("evaluation")

    say(f"head: refitting on all {len(ordered)} images (the model that ships)")
    shipped = refit(evaluated, views, targets)
    phases.end("refit")
    if out_of_fold is None:
        # No cross-validation ran: the finder's held-out predictions come from the shipped
        # model's recipe (same strength and views) fitted on the other folds.
        say(f"possibly mislabelled: {CV_FOLDS} folds over all {len(ordered)} images")
        out_of_fold, _ = out_of_fold_predictions(
            views, targets, len(labels), multi_label, lambda v, t: refit(evaluated, v, t)
        )
    suspects, suspects_total = possibly_mislabelled(out_of_fold, targets, label_ids, ids, multi_label)
    say(f"possibly mislabelled: {suspects_total} images")
    phases.end("mislabelled")
    model = export_model(backbone, shipped)
    served_labels = tuple({"id": label["id"], "name": label["name"]} for label in labels)
    served = ServedHead(
        shipped.weights, shipped.bias, multi_label, backbone.backbone_id, served_labels, shipped.thresholds
    )
    test_plain = np.stack([v[0] for v in test_views[:2]])
    _check_export(model, Served(backbone, session, served), blobs, test_rows[:2], shipped.probabilities(test_plain))
    phases.end("export")
    seconds = round(time.perf_counter() - started, 2)
    say(f"done in {seconds} s, peak memory {peak_memory_mb():.0f} MB")
    card = _card(manifest, backbone.backbone_id, shipped, evaluation, train_rows, test_rows, embedder.computed, seconds)
    card.update(_honesty(len(test_rows), len(train_rows), cross_validation))
    card["possibly_mislabelled"] = suspects
    card["possibly_mislabelled_total"] = suspects_total
    card["phase_seconds"] = phases.seconds
    card["peak_memory_mb"] = round(peak_memory_mb(), 1)
    # The plain view of each image, already embedded: the search index costs no extra inference.
    descriptors = DescriptorIndex.build([row["id"] for row in ordered], np.stack([v[0] for v in views]))
    return TrainedModel(model, card, served.to_bytes(), descriptors.to_bytes())


def _evaluate(
    head: Head, test_views: list[np.ndarray], truth: np.ndarray, label_ids: list[str], test_rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """Every figure of the evaluated head on the test part, with the accuracy's 95 % interval."""
    probs = head.probabilities(np.stack([v[0] for v in test_views]))
    test_ids = [row["id"] for row in test_rows]
    if head.multi_label:
        evaluation = evaluate_multi_label(probs, truth, head.thresholds, label_ids, test_ids)
    else:
        evaluation = evaluate_multi_class(probs, truth, label_ids, test_ids)
    correct = len(test_rows) - len(evaluation["misclassified"])
    evaluation["accuracy_interval"] = wilson_interval(correct, len(test_rows))
    return evaluation


def _honesty(test_images: int, train_images: int, cross_validation: dict[str, Any] | None) -> dict[str, Any]:
    """How the accuracy was measured and what shipped, in fields and in words."""
    fields: dict[str, Any] = {
        "evaluation_method": HOLDOUT_AND_CV if cross_validation else HOLDOUT,
        "evaluation_summary": summary_sentence(test_images, train_images, cross_validation),
        # The model in the ONNX file: refitted on every labelled image after the evaluation.
        "shipped_model_images": test_images + train_images,
        "cross_validated_accuracy": None,
        "cross_validated_accuracy_interval": None,
        "cross_validation": None,
    }
    if cross_validation is not None:
        fields["cross_validated_accuracy"] = cross_validation["accuracy"]
        fields["cross_validated_accuracy_interval"] = cross_validation["accuracy_interval"]
        fields["cross_validation"] = cross_validation
    return fields


class _Phases:
    """Wall time of each step of the job, for the card: tells an owner (and the benchmark) where time goes."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.perf_counter()

    def end(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._mark, 2)
        self._mark = now


def peak_memory_mb() -> float:
    """This process's peak resident memory so far (what sizes a SageMaker instance).

    Linux's VmHWM belongs to the process's own memory since its exec; ``ru_maxrss`` would also
    count the parent's memory at fork time (the local worker's), so it is only the fallback."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


@dataclass(frozen=True)
class Served:
    """How classify runs the version: the shared backbone's session, then the head."""

    backbone: Backbone
    session: ort.InferenceSession
    head: ServedHead

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        [features] = self.session.run([self.backbone.features_name], {self.backbone.input_name: batch})
        return self.head.probabilities(np.asarray(features, dtype=np.float32))


#: The fused export and the served backbone + head must agree this closely (issue 16).
SERVED_TOLERANCE = 1e-5


def _check_export(
    model: bytes, served: Served, blobs: BlobStore, rows: list[dict[str, Any]], expected: np.ndarray
) -> None:
    """The exported file must give what the head gave (from the cached embeddings) and what
    classify will serve (backbone + head) to 1e-5: catches any mismatch before it ships."""
    session = create_session(model)
    batch = np.stack([preprocess(blobs.get(row["key"])) for row in rows])
    probabilities, descriptor = session.run([PROBABILITIES, DESCRIPTOR], {"image": batch})
    if not np.allclose(probabilities, expected, atol=1e-3):
        raise TrainingError("the exported model does not reproduce the trained head (internal error)")
    if np.abs(served.probabilities(batch) - probabilities).max() > SERVED_TOLERANCE:
        raise TrainingError("the exported model and the served backbone + head disagree (internal error)")
    if not np.allclose(np.linalg.norm(descriptor, axis=1), 1.0, atol=1e-3):
        raise TrainingError("the exported descriptor is not normalised (internal error)")


def _card(
    manifest: dict[str, Any],
    backbone_id: str,
    head: Any,
    evaluation: dict[str, Any],
    train_rows: list[dict[str, Any]],
    test_rows: list[dict[str, Any]],
    embedded: int,
    seconds: float,
) -> dict[str, Any]:
    def per_label(rows: list[dict[str, Any]]) -> dict[str, int]:
        counts = Counter(label_id for row in rows for label_id in row["labels"])
        return {label["id"]: counts.get(label["id"], 0) for label in manifest["labels"]}

    return {
        "card_version": 1,
        "model_id": manifest["model_id"],
        "task_id": manifest["task_id"],
        "task_name": manifest["task_name"],
        "version": manifest["version"],
        "task_type": manifest["task_type"],
        "labels": [{"id": label["id"], "name": label["name"]} for label in manifest["labels"]],
        "thresholds": list(head.thresholds) if head.multi_label else None,
        "backbone_id": backbone_id,
        "input": {
            "name": "image",
            "shape": ["N", 3, 224, 224],
            "layout": "NCHW, RGB",
            "preprocessing": describe(),
            "preprocessing_id": PREPROCESSING_ID,
        },
        "outputs": {PROBABILITIES: "softmax" if not head.multi_label else "sigmoid per label", DESCRIPTOR: "L2"},
        **evaluation,
        "counts": {
            "train": per_label(train_rows),
            "test": per_label(test_rows),
            "images_train": len(train_rows),
            "images_test": len(test_rows),
            "negatives": sum(1 for row in train_rows + test_rows if not row["labels"]),
            "skipped": len(manifest.get("skipped_images", [])),
        },
        "regularisation": head.strength,
        "augmented_views": AUGMENTED_VIEWS,
        "embedded_images": embedded,
        "cached_images": len(train_rows) + len(test_rows) - embedded,
        "training_seconds": seconds,
    }
