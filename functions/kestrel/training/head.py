"""The head on top of frozen backbone features: softmax (multi_class) or per-label sigmoid
(multi_label) regression, L2-regularised, fitted with L-BFGS.

The regularisation strength is chosen by stratified cross-validation on the images it is given,
so the same code suits 20 images a label and 2,000; the fit then learns from the plain and the
augmented views. Multi-label thresholds are tuned for F1 on the out-of-fold predictions, so a
test part stays unseen until the final evaluation. :func:`refit` fits the same head (same
strength, same views, same thresholds) on more images: what ships after the evaluation.

What the defaults are and why (measured in docs/quality.md): the features are NOT standardised
(the backbone's pooled features share one scale; standardising blew up rare, noisy features
and made the L2 penalty favour them); the strength grid spans 1e-4..1 in half decades, wide
enough that the choice never sits at an edge on the measured sets; every view
weighs the same (weighting an image's augmented views together as one view measured no better)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from kestrel.vision.heads import activate

#: Candidate L2 strengths (on the mean loss): half decades from 1e-4 to 1.
STRENGTHS = tuple(float(10**exponent) for exponent in np.arange(-4.0, 0.01, 0.5))
MAX_FOLDS = 5
_MAX_ITERATIONS = 500


@dataclass(frozen=True)
class HeadOptions:
    """How the head is fitted; the defaults are what ships, the others are measured alternatives."""

    strengths: tuple[float, ...] = STRENGTHS
    folds: int = MAX_FOLDS
    standardise: bool = False
    #: The weight of each augmented view, relative to the image's plain view.
    augmented_view_weight: float = 1.0
    #: False: learn from the plain views only.
    augmented: bool = True


DEFAULT_OPTIONS = HeadOptions()


@dataclass(frozen=True)
class Head:
    """probabilities = activation(features @ weights + bias); any standardisation is folded in."""

    weights: np.ndarray  # [features, outputs]
    bias: np.ndarray  # [outputs]
    multi_label: bool
    strength: float
    thresholds: tuple[float, ...] = ()

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return activate(features @ self.weights + self.bias, self.multi_label)


def _softmax_loss(
    params: np.ndarray, x: np.ndarray, y: np.ndarray, weight: np.ndarray, strength: float, k: int
) -> tuple[float, np.ndarray]:
    d = x.shape[1]
    w, b = params[: d * k].reshape(d, k), params[d * k :]
    logits = x @ w + b
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    probs = exp / exp.sum(axis=1, keepdims=True)
    rows = np.arange(x.shape[0])
    loss = -(weight * np.log(probs[rows, y] + 1e-12)).sum() + 0.5 * strength * float((w * w).sum())
    probs[rows, y] -= 1.0
    probs *= weight[:, None]
    grad_w = x.T @ probs + strength * w
    grad_b = probs.sum(axis=0)
    return float(loss), np.concatenate([grad_w.ravel(), grad_b])


def _sigmoid_loss(
    params: np.ndarray, x: np.ndarray, y: np.ndarray, weight: np.ndarray, strength: float, k: int
) -> tuple[float, np.ndarray]:
    d = x.shape[1]
    w, b = params[: d * k].reshape(d, k), params[d * k :]
    logits = x @ w + b
    probs = 1.0 / (1.0 + np.exp(-logits))
    # log(1 + e^z) computed stably
    per_row = (np.logaddexp(0.0, logits) - y * logits).sum(axis=1)
    loss = float((weight * per_row).sum()) + 0.5 * strength * float((w * w).sum())
    delta = (probs - y) * weight[:, None]
    grad_w = x.T @ delta + strength * w
    grad_b = delta.sum(axis=0)
    return float(loss), np.concatenate([grad_w.ravel(), grad_b])


def _fit_raw(
    x: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    outputs: int,
    multi_label: bool,
    strength: float,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """The parameters minimising the regularised weighted mean loss, from ``start`` or zeros.

    The loss is strictly convex (L2), so the start changes only how many steps L-BFGS needs."""
    d = x.shape[1]
    start = np.zeros(d * outputs + outputs) if start is None else start
    objective = _sigmoid_loss if multi_label else _softmax_loss
    result = minimize(
        objective,
        start,
        args=(x, y, weight / weight.sum(), strength, outputs),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": _MAX_ITERATIONS},
    )
    return np.asarray(result.x)


def _fit_in_row_space(
    x: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    outputs: int,
    multi_label: bool,
    strength: float,
    start: np.ndarray | None,
) -> np.ndarray:
    """:func:`_fit_raw`'s optimum, found in the span of the rows when there are fewer rows than
    features (20 images a label: 100 rows, 1,280 features).

    With an L2 penalty on the weights (not the bias), the optimal weights are a combination of
    the rows (the gradient's zero: W = -X^T (P - Y) / strength), so W = V B with V an orthonormal
    basis of the rows: ``X W = (X V) B`` and ``|W|^2 = |B|^2``. The same convex problem, the same
    optimum, with 10x fewer unknowns and 10x cheaper steps. Parameters go in and out in the full
    feature space, so warm starts work across fits with different rows."""
    n, d = x.shape
    if n >= d:
        return _fit_raw(x, y, weight, outputs, multi_label, strength, start)
    _, singular, rows = np.linalg.svd(x, full_matrices=False)
    basis = rows[singular > singular[0] * 1e-10].T  # [d, rank]
    reduced_start = None
    if start is not None:
        w, b = start[: d * outputs].reshape(d, outputs), start[d * outputs :]
        reduced_start = np.concatenate([(basis.T @ w).ravel(), b])
    reduced = _fit_raw(x @ basis, y, weight, outputs, multi_label, strength, reduced_start)
    rank = basis.shape[1]
    coefficients, bias = reduced[: rank * outputs].reshape(rank, outputs), reduced[rank * outputs :]
    return np.concatenate([(basis @ coefficients).ravel(), bias])


@dataclass(frozen=True)
class Standardiser:
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray) -> Standardiser:
        return cls(x.mean(axis=0), x.std(axis=0) + 1e-6)

    @classmethod
    def identity(cls, dimensions: int) -> Standardiser:
        return cls(np.zeros(dimensions), np.ones(dimensions))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.scale


def _rows(
    views: Sequence[np.ndarray], targets: np.ndarray, options: HeadOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every used view of every image as a row, its target and its weight."""
    used = [v if options.augmented else v[:1] for v in views]
    x = np.concatenate(used).astype(np.float64)
    y = np.concatenate([np.repeat(targets[i : i + 1], len(v), axis=0) for i, v in enumerate(used)])
    weights = [np.concatenate([[1.0], np.full(len(v) - 1, options.augmented_view_weight)]) for v in used]
    return x, y, np.concatenate(weights)


def _fit(
    views: Sequence[np.ndarray],
    targets: np.ndarray,
    outputs: int,
    multi_label: bool,
    strength: float,
    start: np.ndarray | None = None,
    options: HeadOptions = DEFAULT_OPTIONS,
) -> tuple[Head, np.ndarray]:
    """Fit on the views of every image: a head that takes raw features, and the raw parameters
    (in this fit's feature space: the start of a nearby fit)."""
    x, y, weight = _rows(views, targets, options)
    standardise = Standardiser.of(x) if options.standardise else Standardiser.identity(x.shape[1])
    params = _fit_in_row_space(standardise(x), y, weight, outputs, multi_label, strength, start)
    d = x.shape[1]
    w, b = params[: d * outputs].reshape(d, outputs), params[d * outputs :]
    # Fold any standardisation into the weights: the exported model takes raw features.
    weights = w / standardise.scale[:, None]
    bias = b - (standardise.mean / standardise.scale) @ w
    return Head(weights.astype(np.float32), bias.astype(np.float32), multi_label, strength), params


def strata_of(targets: np.ndarray, multi_label: bool) -> list[object]:
    """What folds are stratified by: the class, or the exact set of tags."""
    return [tuple(row) for row in targets] if multi_label else [int(t) for t in targets]


def stratified_folds(strata: Sequence[object], k: int) -> list[np.ndarray]:
    """k stratified folds, deterministic in the order of the samples: within each stratum the
    samples are dealt round-robin. The caller's order is itself derived from the data (the
    images' content hashes), so the same images always make the same folds."""
    assignment = np.zeros(len(strata), dtype=int)
    dealt: dict[object, int] = {}
    for index, stratum in enumerate(strata):
        position = dealt.get(stratum, 0)
        assignment[index] = position % k
        dealt[stratum] = position + 1
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


def _choose_strength(
    views: Sequence[np.ndarray], targets: np.ndarray, outputs: int, multi_label: bool, options: HeadOptions
) -> tuple[float, np.ndarray | None]:
    """The strength with the best cross-validated score, and its out-of-fold probabilities
    (None when a stratum is too small to hold any image out)."""
    strata = strata_of(targets, multi_label)
    smallest = min(strata.count(s) for s in set(strata))
    if smallest < 2 or len(options.strengths) == 1:
        return options.strengths[len(options.strengths) // 2], None
    folds = stratified_folds(strata, max(2, min(options.folds, smallest)))
    plain = np.stack([v[0] for v in views])
    best_strength, best_score, out_of_fold = options.strengths[0], -1.0, None
    # From the strongest regularisation down, each fold's fit starting from its previous
    # solution (the next one is near it): the same optima in fewer L-BFGS steps.
    starts: list[np.ndarray | None] = [None] * len(folds)
    for strength in sorted(options.strengths, reverse=True):
        scores = []
        oof = np.zeros((len(views), outputs), dtype=np.float64)
        for n, held in enumerate(folds):
            keep = np.setdiff1d(np.arange(len(views)), held)
            # Plain views only: choosing the strength is 5x cheaper, and the choice carries over.
            head, starts[n] = _fit(
                [views[i][:1] for i in keep], targets[keep], outputs, multi_label, strength, starts[n], options
            )
            scores.append(_score(head, plain[held], targets[held]))
            oof[held] = head.probabilities(plain[held])
        score = float(np.mean(scores))
        # Ties go to the stronger regularisation (seen first): the simpler model generalises better.
        if score > best_score + 1e-9:
            best_strength, best_score, out_of_fold = strength, score, oof
    return best_strength, out_of_fold


def train_head(
    views: Sequence[np.ndarray],
    targets: np.ndarray,
    outputs: int,
    multi_label: bool,
    options: HeadOptions = DEFAULT_OPTIONS,
) -> Head:
    """``views[i]``: image i's [views, features], plain view first; ``targets``: class ids
    [n] (multi_class) or 0/1 rows [n, outputs] (multi_label)."""
    with _one_blas_thread():
        strength, out_of_fold = _choose_strength(views, targets, outputs, multi_label, options)
        thresholds: tuple[float, ...] = ()
        if multi_label:
            thresholds = _best_thresholds(out_of_fold, targets) if out_of_fold is not None else tuple([0.5] * outputs)
        return _final_fit(views, targets, outputs, multi_label, strength, thresholds, options)


def refit(head: Head, views: Sequence[np.ndarray], targets: np.ndarray, options: HeadOptions = DEFAULT_OPTIONS) -> Head:
    """The same head (strength, thresholds, views) fitted on other images: after the evaluation,
    the head that ships learns from every labelled image."""
    outputs = head.weights.shape[1]
    with _one_blas_thread():
        return _final_fit(views, targets, outputs, head.multi_label, head.strength, head.thresholds, options)


def _one_blas_thread() -> threadpool_limits:
    """The head's products are small (a few hundred rows by 1,280): BLAS threads cost more to
    wake and join than they save, and on a shared or busy machine they made a fit 20x slower
    (docs/quality.md). One thread, only while fitting."""
    return threadpool_limits(limits=1, user_api="blas")


def _final_fit(
    views: Sequence[np.ndarray],
    targets: np.ndarray,
    outputs: int,
    multi_label: bool,
    strength: float,
    thresholds: tuple[float, ...],
    options: HeadOptions,
) -> Head:
    # The fit on every view starts from the plain views' solution (a fifth of the rows).
    _, start = _fit([v[:1] for v in views], targets, outputs, multi_label, strength, None, options)
    head, _ = _fit(views, targets, outputs, multi_label, strength, start, options)
    return replace(head, thresholds=thresholds)
