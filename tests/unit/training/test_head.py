"""The head's fitting: warm starts change how fast L-BFGS gets there, not where it ends."""

from __future__ import annotations

import numpy as np

from kestrel.training.head import HeadOptions, _fit, refit, train_head


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


def test_refit_keeps_the_strength_and_thresholds_and_learns_the_new_images() -> None:
    """The constructed case: a test image unlike its label's training images is missed by the
    head fitted on the training part, and classified as its own label once the head is refitted
    on every image."""
    views, targets = _views(60, 3, seed=6)
    centres = np.random.default_rng(6).normal(0, 1, (3, 64))  # _views' class centres
    rng = np.random.default_rng(60)
    # Three images labelled 0 that look like class 2 moved along a direction no training image takes.
    away = np.concatenate([np.ones(32), -np.ones(32)])
    odd = [(centres[2] + 2 * away + rng.normal(0, 0.3, (5, 64))).astype(np.float32) for _ in range(3)]
    evaluated = train_head(views, targets, 3, False)
    odd_plain = np.stack([v[0] for v in odd])
    assert (evaluated.probabilities(odd_plain).argmax(1) != 0).all()  # the evaluated head misses them
    shipped = refit(evaluated, views + odd, np.concatenate([targets, [0, 0, 0]]))
    assert shipped.strength == evaluated.strength and shipped.thresholds == evaluated.thresholds
    assert (shipped.probabilities(odd_plain).argmax(1) == 0).all()
    plain = np.stack([v[0] for v in views])
    assert (shipped.probabilities(plain).argmax(1) == targets).mean() > 0.9


def test_the_same_images_in_the_same_order_give_the_same_head() -> None:
    views, targets = _views(45, 3, seed=7)
    first, second = train_head(views, targets, 3, False), train_head(views, targets, 3, False)
    assert first.strength == second.strength
    np.testing.assert_array_equal(first.weights, second.weights)


def test_augmented_views_weigh_as_told() -> None:
    """The augmented views' weight changes the fit: it is honoured, not ignored."""
    views, targets = _views(30, 2, seed=8)
    light, _ = _fit(views, targets, 2, False, 0.01, options=HeadOptions(augmented_view_weight=0.25))
    heavy, _ = _fit(views, targets, 2, False, 0.01, options=HeadOptions(augmented_view_weight=1.0))
    plain_only, _ = _fit(views, targets, 2, False, 0.01, options=HeadOptions(augmented=False))
    assert not np.allclose(light.weights, heavy.weights, atol=1e-4)
    assert not np.allclose(light.weights, plain_only.weights, atol=1e-4)
