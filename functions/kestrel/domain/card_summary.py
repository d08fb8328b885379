"""What of a model card the version's record keeps: a summary bounded in size.

The full card (every misclassified test image, the whole confusion matrix) lives in the blob
store beside the model (``models/<owner>/<model>/card.json``) and is served by
``GET model/{id}/card/``. The record keeps what the console and the model JSON show at a glance,
so that it stays far below DynamoDB's 400 KB item limit whatever the test part's size. The
possibly mislabelled images (at most 50, training/mislabelled.py) stay in the summary whole."""

from __future__ import annotations

import json
from typing import Any

#: Misclassified test images kept in the summary (the first ones, in the card's order).
MAX_SUMMARY_MISTAKES = 100
#: The summary's serialised size at most: a quarter of DynamoDB's 400 KB item, the rest of the
#: version's record being small. Parts beyond it stay in the full card only.
MAX_SUMMARY_BYTES = 100_000
#: Parts dropped, in this order, while the summary is over MAX_SUMMARY_BYTES (tasks with very
#: many labels: the confusion matrix grows with their square).
_DROPPABLE = ("confusion_matrix", "misclassified", "possibly_mislabelled", "per_label", "thresholds", "labels")


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def summarise(card: dict[str, Any]) -> dict[str, Any]:
    """The card with at most MAX_SUMMARY_MISTAKES mistakes and at most MAX_SUMMARY_BYTES in all.

    Adds ``misclassified_total`` (how many the card holds) and ``truncated`` (True when anything
    was left out: read the full card then); ``omitted`` names the parts left out entirely."""
    summary = dict(card)
    if isinstance(card.get("cross_validation"), dict):
        # Each image's out-of-fold prediction (up to 1,000 of them) stays in the full card; the
        # record keeps the cross-validated figures.
        summary["cross_validation"] = {k: v for k, v in card["cross_validation"].items() if k != "out_of_fold"}
    mistakes = list(card.get("misclassified") or [])
    summary["misclassified"] = mistakes[:MAX_SUMMARY_MISTAKES]
    summary["misclassified_total"] = len(mistakes)
    omitted: list[str] = []
    for part in _DROPPABLE:
        if _size(summary) <= MAX_SUMMARY_BYTES:
            break
        if part in summary:
            del summary[part]
            omitted.append(part)
    summary["truncated"] = bool(omitted) or len(mistakes) > MAX_SUMMARY_MISTAKES
    if omitted:
        summary["omitted"] = omitted
    return summary
