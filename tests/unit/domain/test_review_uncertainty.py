"""domain.review: the uncertainty of a prediction and the text that sorts as the number does."""

from __future__ import annotations

from kestrel.domain.review import category_margin, sort_key, tag_closeness


def test_category_margin_is_the_gap_between_the_two_most_probable() -> None:
    assert category_margin([0.2, 0.5, 0.3]) == 0.2
    assert category_margin([0.9]) == 0.9
    assert category_margin([]) == 1.0


def test_tag_closeness_is_the_nearest_probability_to_its_own_threshold() -> None:
    assert abs(tag_closeness([0.9, 0.32, 0.1], [0.5, 0.3, 0.5]) - 0.02) < 1e-12
    assert tag_closeness([], []) == 1.0


def test_sort_keys_order_as_the_numbers_and_stay_in_the_unit_interval() -> None:
    values = [0.5, 0.0, 0.05, 1.0, 0.123456, 0.1]
    assert sorted(values, key=sort_key) == sorted(values)
    assert [sort_key(v) for v in (-0.1, 1.5)] == ["0.000000", "1.000000"]
