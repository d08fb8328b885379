"""The head on top of frozen backbone features: softmax (multi_class) or per-label sigmoid
(multi_label) regression, L2-regularised, fitted with L-BFGS.

The regularisation strength is chosen by stratified cross-validation on the training part's
plain views, so the same code suits 20 images a label and 2,000; the final fit then learns
from the plain and the augmented views. Multi-label thresholds are tuned for F1 on the
out-of-fold predictions, so the test part stays unseen until the final evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

STRENGTHS = (1e-4, 1e-3, 1e-2, 1e-1, 3e-1)
MAX_FOLDS = 3
_MAX_ITERATIONS = 300


@dataclass(frozen=True)
class Head:
    """probabilities = activation(features @ weights + bias); standardisation is folded in."""

    weights: np.ndarray  # [features, outputs]
    bias: np.ndarray  # [outputs]
    multi_label: bool
    strength: float
    thresholds: tuple[float, ...] = ()

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        logits = features @ self.weights + self.bias
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)


def _softmax_loss(
    params: np.ndarray, x: np.ndarray, y: np.ndarray, strength: float, k: int
) -> tuple[float, np.ndarray]:
    d = x.shape[1]
    w, b = params[: d * k].reshape(d, k), params[d * k :]
    logits = x @ w + b
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    probs = exp / exp.sum(axis=1, keepdims=True)
    n = x.shape[0]
    loss = -np.log(probs[np.arange(n), y] + 1e-12).mean() + 0.5 * strength * float((w * w).sum())
    probs[np.arange(n), y] -= 1.0
    grad_w = x.T @ probs / n + strength * w
    grad_b = probs.mean(axis=0)
    return float(loss), np.concatenate([grad_w.ravel(), grad_b])


def _sigmoid_loss(
    params: np.ndarray, x: np.ndarray, y: np.ndarray, strength: float, k: int
) -> tuple[float, np.ndarray]:
    d = x.shape[1]
    w, b = params[: d * k].reshape(d, k), params[d * k :]
    logits = x @ w + b
    probs = 1.0 / (1.0 + np.exp(-logits))
    n = x.shape[0]
    # log(1 + e^z) computed stably
    loss = (np.logaddexp(0.0, logits) - y * logits).sum(axis=1).mean() + 0.5 * strength * float((w * w).sum())
    delta = probs - y
    grad_w = x.T @ delta / n + strength * w
    grad_b = delta.mean(axis=0)
    return float(loss), np.concatenate([grad_w.ravel(), grad_b])


def _fit_raw(
    x: np.ndarray, y: np.ndarray, outputs: int, multi_label: bool, strength: float, start: np.ndarray | None = None
) -> np.ndarray:
    """The parameters minimising the regularised loss, from ``start`` (a nearby solution) or zeros.

    The loss is strictly convex (L2), so the start changes only how many steps L-BFGS needs."""
    d = x.shape[1]
    start = np.zeros(d * outputs + outputs) if start is None else start
    objective = _sigmoid_loss if multi_label else _softmax_loss
    result = minimize(
        objective,
        start,
        args=(x, y, strength, outputs),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": _MAX_ITERATIONS},
    )
    return np.asarray(result.x)


@dataclass(frozen=True)
class Standardiser:
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray) -> Standardiser:
        return cls(x.mean(axis=0), x.std(axis=0) + 1e-6)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.scale


def _fit(
    views: Sequence[np.ndarray],
    targets: np.ndarray,
    outputs: int,
    multi_label: bool,
    strength: float,
    start: np.ndarray | None = None,
) -> tuple[Head, np.ndarray]:
    """Fit on every view of every image: a head that takes raw features, and the raw parameters
    (in this fit's standardised space: the start of a nearby fit)."""
    x = np.concatenate(list(views))
    y = np.concatenate([np.repeat(targets[i : i + 1], len(v), axis=0) for i, v in enumerate(views)])
    standardise = Standardiser.of(x)
    params = _fit_raw(standardise(x), y, outputs, multi_label, strength, start)
    d = x.shape[1]
    w, b = params[: d * outputs].reshape(d, outputs), params[d * outputs :]
    # Fold the standardisation into the weights: the exported model takes raw features.
    weights = w / standardise.scale[:, None]
    bias = b - (standardise.mean / standardise.scale) @ w
    return Head(weights.astype(np.float32), bias.astype(np.float32), multi_label, strength), params


def _folds(strata: Sequence[object], k: int, seed: int) -> list[np.ndarray]:
    """Stratified fold index per sample."""
    rng = np.random.default_rng(seed)
    assignment = np.zeros(len(strata), dtype=int)
    by_stratum: dict[object, list[int]] = {}
    for index, stratum in enumerate(strata):
        by_stratum.setdefault(stratum, []).append(index)
    for members in by_stratum.values():
        order = rng.permutation(len(members))
        for position, member in enumerate(order):
            assignment[members[member]] = position % k
    return [np.flatnonzero(assignment == fold) for fold in range(k)]


def _score(head: Head, plain: np.ndarray, targets: np.ndarray) -> float:
    probs = head.probabilities(plain)
    if head.multi_label:
        return float(((probs >= 0.5) == (targets >= 0.5)).mean())
    return float((probs.argmax(axis=1) == targets).mean())


def _best_thresholds(probs: np.ndarray, targets: np.ndarray) -> tuple[float, ...]:
    """Per label, the threshold with the best F1 on held-out predictions (0.5 if it has no positives)."""
    chosen = []
    candidates = np.linspace(0.05, 0.95, 19)
    for label in range(targets.shape[1]):
        truth = targets[:, label] >= 0.5
        if not truth.any():
            chosen.append(0.5)
            continue
        best, best_f1 = 0.5, -1.0
        for threshold in candidates:
            predicted = probs[:, label] >= threshold
            tp = float((predicted & truth).sum())
            f1 = 2 * tp / (float(predicted.sum()) + float(truth.sum()))
            if f1 > best_f1 + 1e-9:
                best, best_f1 = float(threshold), f1
        chosen.append(round(best, 2))
    return tuple(chosen)


def train_head(
    views: Sequence[np.ndarray], targets: np.ndarray, outputs: int, multi_label: bool, seed: int = 0
) -> Head:
    """``views[i]``: image i's [views, features], plain view first; ``targets``: class ids
    [n] (multi_class) or 0/1 rows [n, outputs] (multi_label)."""
    strata: list[object] = [tuple(row) for row in targets] if multi_label else list(targets)
    smallest = min(list(strata).count(s) for s in set(strata))
    k = max(2, min(MAX_FOLDS, smallest))
    folds = _folds(strata, k, seed) if smallest >= 2 else []
    plain = np.stack([v[0] for v in views])
    best_strength, best_score = STRENGTHS[len(STRENGTHS) // 2], -1.0
    out_of_fold = np.zeros((len(views), outputs), dtype=np.float64)
    if folds:
        # From the strongest regularisation down, each fold's fit starting from its previous
        # solution (the next one is near it): the same optima in fewer L-BFGS steps.
        starts: list[np.ndarray | None] = [None] * len(folds)
        for strength in sorted(STRENGTHS, reverse=True):
            scores = []
            oof = np.zeros_like(out_of_fold)
            for n, held in enumerate(folds):
                keep = np.setdiff1d(np.arange(len(views)), held)
                # Plain views only: choosing the strength is 5x cheaper, and the choice carries over.
                head, starts[n] = _fit(
                    [views[i][:1] for i in keep], targets[keep], outputs, multi_label, strength, starts[n]
                )
                scores.append(_score(head, plain[held], targets[held]))
                oof[held] = head.probabilities(plain[held])
            score = float(np.mean(scores))
            # Ties go to the stronger regularisation (seen first): the simpler model generalises better.
            if score > best_score + 1e-9:
                best_strength, best_score, out_of_fold = strength, score, oof
    # The final fit on every view starts from the plain views' solution (a fifth of the rows).
    _, start = _fit([v[:1] for v in views], targets, outputs, multi_label, best_strength)
    head, _ = _fit(views, targets, outputs, multi_label, best_strength, start)
    if multi_label:
        thresholds = _best_thresholds(out_of_fold, targets) if folds else tuple([0.5] * outputs)
        return Head(head.weights, head.bias, True, best_strength, thresholds)
    return head
