"""The summary of a model card that a version's record keeps: bounded, and honest about it."""

from __future__ import annotations

import json
from typing import Any

from kestrel.domain.card_summary import MAX_SUMMARY_BYTES, MAX_SUMMARY_MISTAKES, summarise


def card(mistakes: int, labels: int = 2) -> dict[str, Any]:
    ids = [f"{n:036d}" for n in range(labels)]
    return {
        "accuracy": 0.9,
        "accuracy_interval": [0.85, 0.95],
        "labels": [{"id": label, "name": f"label {n}"} for n, label in enumerate(ids)],
        "per_label": {label: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 3} for label in ids},
        "confusion_matrix": {"labels": ids, "rows": [[1] * labels for _ in ids]},
        "misclassified": [
            {"image_id": str(n), "label": ids[0], "predicted": ids[-1], "prob": 0.5} for n in range(mistakes)
        ],
    }


def test_a_small_card_is_kept_whole_and_says_so() -> None:
    whole = card(3)
    summary = summarise(whole)
    assert summary == {**whole, "misclassified_total": 3, "truncated": False}


def test_mistakes_beyond_the_first_100_stay_in_the_card_only() -> None:
    whole = card(5_000)
    summary = summarise(whole)
    assert summary["misclassified"] == whole["misclassified"][:MAX_SUMMARY_MISTAKES]
    assert (summary["misclassified_total"], summary["truncated"]) == (5_000, True)
    assert summary["per_label"] == whole["per_label"] and summary["accuracy_interval"] == [0.85, 0.95]
    assert "omitted" not in summary
    assert whole["misclassified"][-1]["image_id"] == "4999"  # the card itself is not changed


def test_with_very_many_labels_the_confusion_matrix_goes_first_and_the_summary_stays_bounded() -> None:
    whole = card(10, labels=300)  # the matrix alone: 90,000 cells
    summary = summarise(whole)
    assert len(json.dumps(summary, separators=(",", ":")).encode()) <= MAX_SUMMARY_BYTES
    assert summary["omitted"] == ["confusion_matrix"] and summary["truncated"] is True
    assert summary["per_label"] == whole["per_label"]


def test_with_even_more_labels_later_parts_go_too_but_the_headline_stays() -> None:
    whole = card(10, labels=3_000)
    summary = summarise(whole)
    assert len(json.dumps(summary, separators=(",", ":")).encode()) <= MAX_SUMMARY_BYTES
    assert summary["omitted"][:2] == ["confusion_matrix", "misclassified"]
    assert summary["accuracy"] == 0.9 and summary["misclassified_total"] == 10


def test_each_images_out_of_fold_prediction_stays_in_the_full_card() -> None:
    full = card(3)
    full["cross_validation"] = {
        "folds": 5,
        "accuracy": 0.9,
        "per_label_recall": {"a": 0.9},
        "out_of_fold": [{"image_id": f"img-{n}", "predicted": "a", "probs": [0.9, 0.1]} for n in range(1000)],
    }
    summary = summarise(full)
    assert summary["cross_validation"] == {"folds": 5, "accuracy": 0.9, "per_label_recall": {"a": 0.9}}
    assert len(full["cross_validation"]["out_of_fold"]) == 1000  # the card itself is untouched
    assert not summary["truncated"] and "confusion_matrix" in summary


def test_the_possibly_mislabelled_images_stay_in_the_summary_until_the_matrix_and_mistakes_are_gone() -> None:
    from kestrel.training.mislabelled import MAX_POSSIBLY_MISLABELLED

    full = card(3)
    full["possibly_mislabelled"] = [
        {
            "image_id": f"{n:08d}-0000-4000-8000-000000000000",
            "labels": [f"{0:036d}"],
            "suggested": [f"{1:036d}"],
            "probs": {f"{0:036d}": 0.0123, f"{1:036d}": 0.9876},
            "margin": 0.9753,
        }
        for n in range(MAX_POSSIBLY_MISLABELLED)
    ]
    assert summarise(full)["possibly_mislabelled"] == full["possibly_mislabelled"]  # a full list is ~11 KB
    crowded = {**card(MAX_SUMMARY_MISTAKES, labels=150), "possibly_mislabelled": full["possibly_mislabelled"]}
    summary = summarise(crowded)
    assert summary["omitted"] == ["confusion_matrix"] and "possibly_mislabelled" in summary
