"""How honest the accuracy is: its interval, and a cross-validated accuracy when the test part is
too small to trust on its own.

With 5 test images a label, "100 %" is a coin toss; so beside the hold-out accuracy every model
carries its 95 % Wilson interval, and when the test part is small (fewer than
:data:`MIN_TEST_IMAGES` images, or a label with fewer than :data:`MIN_TEST_IMAGES_PER_LABEL`)
the job also runs k-fold cross-validation over every labelled image: each fold's head is trained
exactly as the evaluated one is (same views, same strength search) on the other folds, and
predicts the fold it never saw. :func:`out_of_fold_predictions` is that loop for any fit: the
job also runs it with the shipped recipe when no cross-validation ran, so the possibly
mislabelled finder (training/mislabelled.py) has a held-out prediction for every image."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kestrel.training.head import Head, HeadOptions, strata_of, stratified_folds, train_head
from kestrel.training.metrics import wilson_interval

MIN_TEST_IMAGES = 100
MIN_TEST_IMAGES_PER_LABEL = 10
CV_FOLDS = 5
#: The card (stored whole on the model's item: DynamoDB's 400 KB cap) keeps each image's
#: out-of-fold prediction up to this many images; above it, only the figures.
MAX_OUT_OF_FOLD_ON_CARD = 1000
HOLDOUT = "holdout"
HOLDOUT_AND_CV = "holdout+cross_validation"


def needs_cross_validation(test_targets: np.ndarray, outputs: int, multi_label: bool) -> bool:
    """True when the test part is too small for its accuracy alone to mean much."""
    if len(test_targets) < MIN_TEST_IMAGES:
        return True
    per_label = (test_targets >= 0.5).sum(axis=0) if multi_label else np.bincount(test_targets, minlength=outputs)
    return bool((per_label < MIN_TEST_IMAGES_PER_LABEL).any())


def _predicted(head: Head, plain: np.ndarray) -> np.ndarray:
    """Class ids [n] (multi_class) or 0/1 rows [n, labels] at the head's thresholds (multi_label)."""
    probs = head.probabilities(plain)
    if head.multi_label:
        return (probs >= np.asarray(head.thresholds)[None, :]).astype(float)
    return probs.argmax(axis=1)


def out_of_fold_predictions(
    views: Sequence[np.ndarray],
    targets: np.ndarray,
    outputs: int,
    multi_label: bool,
    fit: Callable[[Sequence[np.ndarray], np.ndarray], Head],
    folds: int = CV_FOLDS,
) -> tuple[np.ndarray, np.ndarray]:
    """Each image's probabilities [n, labels] and prediction from a head ``fit`` on the other
    stratified folds: what a model that never saw the image made of it."""
    plain = np.stack([v[0] for v in views])
    probabilities = np.zeros((len(views), outputs))
    predicted = np.zeros((len(views), outputs)) if multi_label else np.zeros(len(views), dtype=int)
    for held in stratified_folds(strata_of(targets, multi_label), folds):
        if not len(held):
            continue
        keep = np.setdiff1d(np.arange(len(views)), held)
        head = fit([views[i] for i in keep], targets[keep])
        probabilities[held] = head.probabilities(plain[held])
        predicted[held] = _predicted(head, plain[held])
    return probabilities, predicted


def cross_validate(
    views: Sequence[np.ndarray],
    targets: np.ndarray,
    label_ids: Sequence[str],
    image_ids: Sequence[str],
    multi_label: bool,
    options: HeadOptions,
    folds: int = CV_FOLDS,
) -> tuple[dict[str, Any], np.ndarray]:
    """Stratified k-fold accuracy over every image, its interval, per-label recall from the folds,
    and each image's out-of-fold prediction (what a model that never saw it made of it): the
    card's ``cross_validation``; and the out-of-fold probabilities [images, labels], unrounded."""
    outputs = len(label_ids)

    def fit(fold_views: Sequence[np.ndarray], fold_targets: np.ndarray) -> Head:
        return train_head(fold_views, fold_targets, outputs, multi_label, options)

    probabilities, predicted = out_of_fold_predictions(views, targets, outputs, multi_label, fit, folds)
    figures = _figures(probabilities, predicted, targets, label_ids, image_ids, multi_label, folds)
    return figures, probabilities


def _figures(
    probabilities: np.ndarray,
    predicted: np.ndarray,
    targets: np.ndarray,
    label_ids: Sequence[str],
    image_ids: Sequence[str],
    multi_label: bool,
    folds: int = CV_FOLDS,
) -> dict[str, Any]:
    """The card's cross_validation part from :func:`out_of_fold_predictions`'s answer."""
    outputs = len(label_ids)
    if multi_label:
        right = (predicted == targets).all(axis=1)
        truth = targets >= 0.5
        found = (predicted >= 0.5) & truth
        recall = {label_ids[i]: _ratio(found[:, i].sum(), truth[:, i].sum()) for i in range(outputs)}
    else:
        right = predicted == targets
        recall = {label_ids[i]: _ratio(right[targets == i].sum(), (targets == i).sum()) for i in range(outputs)}
    return {
        "folds": folds,
        "images": len(targets),
        "accuracy": round(float(right.mean()), 4),
        "accuracy_interval": wilson_interval(int(right.sum()), len(right)),
        "per_label_recall": recall,
        # What a model that never saw each image made of it (the possibly mislabelled finder
        # reads the unrounded probabilities). Omitted (None) above MAX_OUT_OF_FOLD_ON_CARD images.
        "out_of_fold": [
            _out_of_fold(image_ids[n], probabilities[n], predicted[n], label_ids, multi_label)
            for n in range(len(targets))
        ]
        if len(targets) <= MAX_OUT_OF_FOLD_ON_CARD
        else None,
    }


def _ratio(part: Any, whole: Any) -> float:
    return round(float(part) / float(whole), 4) if whole else 0.0


def _out_of_fold(
    image_id: str, probs: np.ndarray, predicted: Any, label_ids: Sequence[str], multi_label: bool
) -> dict[str, Any]:
    if multi_label:
        return {
            "image_id": image_id,
            "predicted": [label_ids[int(i)] for i in np.flatnonzero(np.asarray(predicted) >= 0.5)],
            "probs": [round(float(p), 4) for p in probs],
        }
    return {"image_id": image_id, "predicted": label_ids[int(predicted)], "probs": [round(float(p), 4) for p in probs]}


def summary_sentence(test_images: int, train_images: int, cross_validation: dict[str, Any] | None) -> str:
    """The evaluation in words an owner understands (the card, the API, the console, the CLI)."""
    total = test_images + train_images
    sentence = (
        f"accuracy measured on {test_images} test images by a model trained on the other {train_images}; "
        f"the deployed model was then trained on all {total}"
    )
    if cross_validation is not None:
        low, high = cross_validation["accuracy_interval"]
        sentence += (
            f". Because the test part is small, the accuracy was also cross-validated over all {total} images "
            f"({cross_validation['folds']} folds): {_percent(cross_validation['accuracy'])} "
            f"({100 * low:.0f}\u2013{100 * high:.0f} %)"
        )
    return sentence


def _percent(value: float) -> str:
    return f"{100 * value:.0f} %"
