"""Possibly mislabelled training images: those whose own label a model that never saw them
disagrees with most.

Each labelled image has an out-of-fold prediction (a head fitted on the other folds: the image
was not learnt from, so a wrong label cannot teach the model to agree with itself). The
disagreement is a *margin*: how much more probability the model puts on the answer it prefers
than on the image's own answer.

* categories: p(predicted label) - p(own label), when the predicted label is another one;
* tags: per tag, p(the other answer) - p(the own answer) = 2 |y - p| - 1, for a tag the image
  carries with p < 0.5 or lacks with p > 0.5; the image's margin is its largest tag's.

An image is listed when its margin is at least :data:`MIN_MARGIN` (0.5): the model prefers
another answer by at least 50 points. For two labels (and for a tag) that is p(other) >= 0.75;
below it are the images the model merely hesitates about (two similar labels, an unusual view),
which would flood the list with correctly labelled images. Measured on real photos with 5 % of
the labels swapped (docs/quality.md, section 7, ``bench/mislabelled.py``): on a hard 6-label set
0.5 finds 69 % of them with 3-5 false alarms in 600 images, where 0.3 finds 88 % with 15-20.
At most :data:`MAX_POSSIBLY_MISLABELLED` images are listed, largest margin first (the card is
stored whole beside the model and its summary in the version's record)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

MIN_MARGIN = 0.5
MAX_POSSIBLY_MISLABELLED = 50
_ROUNDING = 1e-9  # 0.7 - 0.2 is 0.49999999999999994: a margin of 0.5 passes


def _rounded(value: float) -> float:
    return round(float(value), 4)


def _category_entries(
    probabilities: np.ndarray, targets: np.ndarray, label_ids: Sequence[str], image_ids: Sequence[str]
) -> list[dict[str, Any]]:
    rows = np.arange(len(targets))
    predicted = probabilities.argmax(axis=1)
    margins = probabilities[rows, predicted] - probabilities[rows, targets]
    entries = []
    for n in np.flatnonzero((predicted != targets) & (margins >= MIN_MARGIN - _ROUNDING)).tolist():
        own, suggested = int(targets[n]), int(predicted[n])
        entries.append(
            {
                "image_id": image_ids[n],
                "labels": [label_ids[own]],
                "suggested": [label_ids[suggested]],
                "probs": {label_ids[i]: _rounded(probabilities[n, i]) for i in (own, suggested)},
                "margin": _rounded(margins[n]),
            }
        )
    return entries


def _tag_entries(
    probabilities: np.ndarray, targets: np.ndarray, label_ids: Sequence[str], image_ids: Sequence[str]
) -> list[dict[str, Any]]:
    own = targets >= 0.5
    margins = 2.0 * np.abs(own.astype(float) - probabilities) - 1.0  # > 0: the model says the opposite
    flagged = margins >= MIN_MARGIN - _ROUNDING
    entries = []
    for n in np.flatnonzero(flagged.any(axis=1)).tolist():
        suggested = own[n] ^ flagged[n]  # every flagged tag flipped
        involved = np.flatnonzero(own[n] | flagged[n]).tolist()
        entries.append(
            {
                "image_id": image_ids[n],
                "labels": [label_ids[i] for i in np.flatnonzero(own[n]).tolist()],
                "suggested": [label_ids[i] for i in np.flatnonzero(suggested).tolist()],
                "probs": {label_ids[i]: _rounded(probabilities[n, i]) for i in involved},
                "margin": _rounded(margins[n].max()),
            }
        )
    return entries


def possibly_mislabelled(
    probabilities: np.ndarray,
    targets: np.ndarray,
    label_ids: Sequence[str],
    image_ids: Sequence[str],
    multi_label: bool,
) -> tuple[list[dict[str, Any]], int]:
    """The images to check, largest margin first (at most MAX_POSSIBLY_MISLABELLED), and how many
    passed the cut in all.

    ``probabilities``: each image's out-of-fold probabilities [n, labels]; ``targets``: its own
    label ids [n] (categories) or 0/1 rows [n, labels] (tags). Each entry: ``image_id``, its own
    ``labels``, the ``suggested`` labels, ``probs`` (the out-of-fold probability of each label
    involved) and ``margin``."""
    entries = (_tag_entries if multi_label else _category_entries)(probabilities, targets, label_ids, image_ids)
    entries.sort(key=lambda entry: (-entry["margin"], entry["image_id"]))
    return entries[:MAX_POSSIBLY_MISLABELLED], len(entries)
