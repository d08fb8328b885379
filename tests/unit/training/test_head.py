"""The head's fitting: warm starts change how fast L-BFGS gets there, not where it ends."""

from __future__ import annotations

import numpy as np

from kestrel.training.head import _fit, train_head


def _views(n: int, classes: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (classes, 64))
    targets = np.arange(n) % classes
    views = [(centres[t] + rng.normal(0, 1.5, (5, 64))).astype(np.float32) for t in targets]
    return views, targets


def test_a_warm_started_fit_ends_where_a_cold_one_does() -> None:
    views, targets = _views(90, 3, seed=1)
    cold, cold_params = _fit(views, targets, 3, False, 0.01)
    _, start = _fit([v[:1] for v in views], targets, 3, False, 0.01)  # the plain views' solution
    warm, warm_params = _fit(views, targets, 3, False, 0.01, start)
    probe = np.concatenate(views)
    assert np.abs(cold.probabilities(probe) - warm.probabilities(probe)).max() < 1e-2
    assert cold_params.shape == warm_params.shape


def test_train_head_chooses_a_strength_and_fits_every_view() -> None:
    views, targets = _views(60, 3, seed=2)
    head = train_head(views, targets, 3, False)
    cold, _ = _fit(views, targets, 3, False, head.strength)
    plain = np.stack([v[0] for v in views])
    assert (head.probabilities(plain).argmax(1) == cold.probabilities(plain).argmax(1)).mean() >= 0.98
    assert (head.probabilities(plain).argmax(1) == targets).mean() > 0.9


def test_multi_label_heads_get_a_threshold_per_label() -> None:
    views, classes = _views(60, 3, seed=3)
    targets = np.stack([(classes == 0) | (classes == 1), classes == 1, classes == 2], axis=1).astype(float)
    head = train_head(views, targets, 3, True)
    assert head.multi_label and len(head.thresholds) == 3
    assert all(0.0 < threshold < 1.0 for threshold in head.thresholds)
