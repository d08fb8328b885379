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
