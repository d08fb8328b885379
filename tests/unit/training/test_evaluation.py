"""How honest the accuracy is: the Wilson interval, when cross-validation runs, what it gives."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel.training.evaluation import cross_validate, needs_cross_validation, summary_sentence
from kestrel.training.head import HeadOptions
from kestrel.training.metrics import wilson_interval


@pytest.mark.parametrize(
    ("correct", "total", "low", "high"),
    [
        (20, 20, 0.8389, 1.0),  # a perfect score on 20 images still admits 84 %
        (0, 10, 0.0, 0.2775),
        (92, 100, 0.8500, 0.9588),
        (50, 100, 0.4038, 0.5962),
    ],
)
def test_wilson_interval_matches_the_textbook_values(correct: int, total: int, low: float, high: float) -> None:
    assert wilson_interval(correct, total) == pytest.approx([low, high], abs=2e-4)


def test_the_interval_narrows_as_the_test_part_grows() -> None:
    widths = [np.subtract(*reversed(wilson_interval(9 * n // 10, n))) for n in (10, 100, 1000)]
    assert widths[0] > widths[1] > widths[2] > 0


def test_cross_validation_runs_when_the_test_part_is_small() -> None:
    assert needs_cross_validation(np.array([0] * 40 + [1] * 40), 2, False)  # 80 test images
    assert not needs_cross_validation(np.array([0] * 60 + [1] * 60), 2, False)
    assert needs_cross_validation(np.array([0] * 150 + [1] * 9), 2, False)  # one label has 9
    tags = np.zeros((200, 2))
    tags[:100, 0] = 1
    tags[:5, 1] = 1
    assert needs_cross_validation(tags, 2, True)  # the second tag is on 5 test images
    tags[:50, 1] = 1
    assert not needs_cross_validation(tags, 2, True)


def _views(n: int, classes: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (classes, 32))
    targets = np.arange(n) % classes
    return [(centres[t] + rng.normal(0, 1.2, (3, 32))).astype(np.float32) for t in targets], targets


def test_cross_validation_gives_accuracy_interval_recall_and_every_images_held_out_prediction() -> None:
    views, targets = _views(60, 3, seed=4)
    ids = [f"img-{n}" for n in range(60)]
    result, probabilities = cross_validate(views, targets, ["a", "b", "c"], ids, False, HeadOptions(folds=3))
    assert probabilities.shape == (60, 3)
    assert result["folds"] == 5 and result["images"] == 60
    low, high = result["accuracy_interval"]
    assert low <= result["accuracy"] <= high and result["accuracy"] > 0.8
    assert set(result["per_label_recall"]) == {"a", "b", "c"}
    # Per-label recall averages to the accuracy on balanced labels.
    assert np.mean(list(result["per_label_recall"].values())) == pytest.approx(result["accuracy"], abs=1e-3)
    held_out = result["out_of_fold"]
    assert [entry["image_id"] for entry in held_out] == ids
    right = sum(entry["predicted"] == "abc"[targets[n]] for n, entry in enumerate(held_out))
    assert np.array([entry["probs"] for entry in held_out]) == pytest.approx(probabilities, abs=1e-4)
    assert right / 60 == pytest.approx(result["accuracy"], abs=1e-4)
    # Deterministic: the same images make the same folds and the same figures.
    assert cross_validate(views, targets, ["a", "b", "c"], ids, False, HeadOptions(folds=3))[0] == result


def test_multi_label_cross_validation_scores_exact_tag_sets() -> None:
    views, classes = _views(60, 3, seed=5)
    targets = np.stack([classes == 0, (classes == 1) | (classes == 2)], axis=1).astype(float)
    result, _ = cross_validate(views, targets, ["x", "y"], [str(n) for n in range(60)], True, HeadOptions(folds=3))
    assert 0.7 < result["accuracy"] <= 1.0
    assert all(isinstance(entry["predicted"], list) for entry in result["out_of_fold"])


def test_the_sentence_says_what_was_measured_and_what_ships() -> None:
    assert summary_sentence(24, 96, None) == (
        "accuracy measured on 24 test images by a model trained on the other 96; "
        "the deployed model was then trained on all 120"
    )
    sentence = summary_sentence(24, 96, {"folds": 5, "accuracy": 0.9167, "accuracy_interval": [0.85, 0.95]})
    assert sentence.endswith("cross-validated over all 120 images (5 folds): 92 % (85\u201395 %)")
