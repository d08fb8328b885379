"""The mislabelled-image finder: the cut and the cap on constructed probabilities, and on a
constructed task (clustered features, a few labels deliberately swapped) the job's own recipe —
out-of-fold predictions from the evaluated head's refit — lists the swapped images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kestrel.training.evaluation import out_of_fold_predictions
from kestrel.training.head import Head, HeadOptions, refit, train_head
from kestrel.training.mislabelled import MAX_POSSIBLY_MISLABELLED, MIN_MARGIN, possibly_mislabelled

LABELS = ["cat", "coffee", "rocket"]


def test_only_images_the_model_prefers_another_label_for_by_the_margin_are_listed() -> None:
    probabilities = np.array(
        [
            [0.05, 0.90, 0.05],  # own cat, the model says coffee by 0.85: listed
            [0.30, 0.45, 0.25],  # own cat, coffee by only 0.15: hesitation, not listed
            [0.10, 0.15, 0.75],  # own rocket, agreed: not listed
            [0.20, 0.70, 0.10],  # own cat, coffee by exactly 0.5: listed
        ]
    )
    targets = np.array([0, 0, 2, 0])
    listed, total = possibly_mislabelled(probabilities, targets, LABELS, ["a", "b", "c", "d"], False)
    assert total == 2
    assert [entry["image_id"] for entry in listed] == ["a", "d"]  # the largest margin first
    assert listed[0] == {
        "image_id": "a",
        "labels": ["cat"],
        "suggested": ["coffee"],
        "probs": {"cat": 0.05, "coffee": 0.9},
        "margin": 0.85,
    }
    assert listed[1]["margin"] == MIN_MARGIN


def test_tags_list_each_tag_the_model_says_the_opposite_of() -> None:
    probabilities = np.array(
        [
            [0.95, 0.10, 0.90],  # has cat and coffee; the model says rocket, not coffee
            [0.60, 0.40, 0.30],  # has cat; nothing strong: not listed
            [0.20, 0.80, 0.10],  # has nothing; the model says coffee (0.8 -> margin 0.6)
        ]
    )
    targets = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=float)
    listed, total = possibly_mislabelled(probabilities, targets, LABELS, ["a", "b", "c"], True)
    assert total == 2
    assert listed[0] == {
        "image_id": "a",
        "labels": ["cat", "coffee"],
        "suggested": ["cat", "rocket"],
        "probs": {"cat": 0.95, "coffee": 0.1, "rocket": 0.9},
        "margin": 0.8,
    }
    assert listed[1]["image_id"] == "c" and listed[1]["suggested"] == ["coffee"] and listed[1]["labels"] == []


def test_the_list_is_capped_and_says_how_many_passed() -> None:
    n = MAX_POSSIBLY_MISLABELLED + 30
    probabilities = np.tile([[0.02, 0.98]], (n, 1))
    probabilities[:, 1] -= np.arange(n) / 1000  # distinct margins
    probabilities[:, 0] = 1 - probabilities[:, 1]
    ids = [f"{i:03}" for i in range(n)]
    listed, total = possibly_mislabelled(probabilities, np.zeros(n, dtype=int), ["a", "b"], ids, False)
    assert total == n and len(listed) == MAX_POSSIBLY_MISLABELLED
    assert [entry["image_id"] for entry in listed] == [f"{i:03}" for i in range(MAX_POSSIBLY_MISLABELLED)]


def _task(per_label: int, swapped: int, seed: int = 3) -> tuple[list[np.ndarray], np.ndarray, set[int]]:
    """Three well separated clusters of 'features' (1 plain + 2 augmented views an image), with
    ``swapped`` images of each label given the next label instead."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (len(LABELS), 64))
    truth = np.repeat(np.arange(len(LABELS)), per_label)
    views = [(centres[t] + rng.normal(0, 0.9, (3, 64))).astype(np.float32) for t in truth]
    targets = truth.copy()
    wrong: set[int] = set()
    for label in range(len(LABELS)):
        for n in np.flatnonzero(truth == label)[:swapped]:
            targets[n] = (label + 1) % len(LABELS)
            wrong.add(int(n))
    return views, targets, wrong


def _found(views: Sequence[np.ndarray], targets: np.ndarray, multi_label: bool = False) -> tuple[list[dict], int]:
    """What the training job does: the evaluated head's recipe refitted on the other folds."""
    outputs = len(LABELS)
    evaluated = train_head(views, targets, outputs, multi_label, HeadOptions())

    def fit(fold_views: Sequence[np.ndarray], fold_targets: np.ndarray) -> Head:
        return refit(evaluated, fold_views, fold_targets)

    probabilities, _ = out_of_fold_predictions(views, targets, outputs, multi_label, fit)
    ids = [f"img-{n:03}" for n in range(len(views))]
    return possibly_mislabelled(probabilities, targets, LABELS, ids, multi_label)


def test_deliberately_swapped_labels_are_found_with_few_false_alarms() -> None:
    views, targets, wrong = _task(per_label=30, swapped=2)  # 6 of 90 images carry another label
    listed, total = _found(views, targets)
    found = {int(entry["image_id"][4:]) for entry in listed}
    assert found >= wrong, f"missed {sorted(wrong - found)}"
    assert len(found - wrong) <= 1, f"false alarms: {sorted(found - wrong)}"
    assert total == len(listed)
    for entry in listed:
        n = int(entry["image_id"][4:])
        if n in wrong:  # the suggestion is the label it really has
            assert entry["suggested"] == [LABELS[(targets[n] - 1) % len(LABELS)]]
            assert entry["labels"] == [LABELS[targets[n]]]


def test_a_clean_task_lists_nothing() -> None:
    views, targets, wrong = _task(per_label=30, swapped=0)
    assert not wrong
    assert _found(views, targets) == ([], 0)


def test_swapped_tags_are_found() -> None:
    views, classes, wrong = _task(per_label=30, swapped=2)
    tags = np.eye(len(LABELS))[classes]  # one tag an image; the swapped ones carry the wrong tag
    listed, _ = _found(views, tags, multi_label=True)
    found = {int(entry["image_id"][4:]) for entry in listed}
    assert found >= wrong, f"missed {sorted(wrong - found)}"
    assert len(found - wrong) <= 2, f"false alarms: {sorted(found - wrong)}"
