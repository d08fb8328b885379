"""How well a trained head does on the test part: what goes into the card and the console."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": tp + fn}


def evaluate_multi_class(
    probs: np.ndarray, truth: np.ndarray, label_ids: Sequence[str], image_ids: Sequence[str]
) -> dict[str, Any]:
    predicted = probs.argmax(axis=1)
    k = len(label_ids)
    confusion = np.zeros((k, k), dtype=int)
    for t, p in zip(truth, predicted, strict=True):
        confusion[t, p] += 1
    per_label = {
        label_ids[i]: _prf(
            int(confusion[i, i]),
            int(confusion[:, i].sum() - confusion[i, i]),
            int(confusion[i].sum() - confusion[i, i]),
        )
        for i in range(k)
    }
    misclassified = [
        {
            "image_id": image_ids[n],
            "label": label_ids[int(truth[n])],
            "predicted": label_ids[int(predicted[n])],
            "prob": round(float(probs[n, predicted[n]]), 4),
        }
        for n in range(len(image_ids))
        if predicted[n] != truth[n]
    ]
    accuracy = float((predicted == truth).mean()) if len(truth) else 0.0
    return {
        "accuracy": round(accuracy, 4),
        "per_label": per_label,
        "confusion_matrix": {"labels": list(label_ids), "rows": confusion.tolist()},
        "misclassified": misclassified,
    }


def evaluate_multi_label(
    probs: np.ndarray,
    truth: np.ndarray,
    thresholds: Sequence[float],
    label_ids: Sequence[str],
    image_ids: Sequence[str],
) -> dict[str, Any]:
    predicted = probs >= np.asarray(thresholds)[None, :]
    actual = truth >= 0.5
    per_label = {}
    for i, label_id in enumerate(label_ids):
        tp = int((predicted[:, i] & actual[:, i]).sum())
        fp = int((predicted[:, i] & ~actual[:, i]).sum())
        fn = int((~predicted[:, i] & actual[:, i]).sum())
        per_label[label_id] = _prf(tp, fp, fn)
    exact = (predicted == actual).all(axis=1)
    tp, fp, fn = int((predicted & actual).sum()), int((predicted & ~actual).sum()), int((~predicted & actual).sum())
    misclassified = [
        {
            "image_id": image_ids[n],
            "labels": [label_ids[int(i)] for i in np.flatnonzero(actual[n])],
            "predicted": [label_ids[int(i)] for i in np.flatnonzero(predicted[n])],
        }
        for n in range(len(image_ids))
        if not exact[n]
    ]
    return {
        # Exact match: every tag of the image right. Strict, so it is the honest headline.
        "accuracy": round(float(exact.mean()) if len(exact) else 0.0, 4),
        "micro_f1": _prf(tp, fp, fn)["f1"],
        "per_label": per_label,
        "misclassified": misclassified,
    }


#: z for a two-sided 95 % interval.
_Z95 = 1.959963984540054


def wilson_interval(correct: int, total: int, z: float = _Z95) -> list[float]:
    """The 95 % Wilson score interval [low, high] of a proportion measured as correct/total.

    Unlike the textbook p ± z·sqrt(p(1-p)/n), it stays inside [0, 1] and does not collapse to a
    point at 0 % or 100 %: 20 right out of 20 gives [0.839, 1.0], not [1.0, 1.0]."""
    if total <= 0:
        return [0.0, 1.0]
    p = correct / total
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * float(np.sqrt(p * (1 - p) / total + z * z / (4 * total * total))) / denominator
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]
