"""How unsure a model was about an image: the review queue's order. No I/O here.

A category task is unsure when its two most probable labels are close (the margin p1 - p2);
a tag task is unsure when some tag's probability is close to that tag's threshold (the smallest
|p - threshold|). Both lie in [0, 1]; smaller is more uncertain, and the queue lists the smallest
first."""

from __future__ import annotations

from collections.abc import Sequence

#: Where classify's ``store_images`` keeps the model's prediction in the image's meta_data.
PREDICTION_KEY = "kestrel_prediction"
#: Probabilities kept with a queued image (the most probable first): enough to choose from,
#: bounded however many labels a task has.
KEPT_LABELS = 10


def category_margin(probs: Sequence[float]) -> float:
    """p1 - p2 of the two most probable labels (a task with one label: p1)."""
    ordered = sorted((float(p) for p in probs), reverse=True)
    if not ordered:
        return 1.0
    second = ordered[1] if len(ordered) > 1 else 0.0
    return _unit(ordered[0] - second)


def tag_closeness(probs: Sequence[float], thresholds: Sequence[float]) -> float:
    """The smallest |p - threshold| over the tags."""
    if not probs:
        return 1.0
    return _unit(min(abs(float(p) - float(t)) for p, t in zip(probs, thresholds, strict=True)))


def sort_key(uncertainty: float) -> str:
    """``uncertainty`` as text that sorts as the number does (the store orders by text)."""
    return f"{_unit(uncertainty):.6f}"


def _unit(value: float) -> float:
    return min(1.0, max(0.0, value))
