"""``check_trainable``: who may train. Every refusal names what is short and by how much.

(The split has its own tests; the negative label of a multi_label task never reaches this rule:
``store.lifecycle.trainable_labels`` leaves it out, see tests/unit/store/test_lifecycle.py.)"""

from __future__ import annotations

import pytest

from kestrel.domain.errors import InvalidInput, KestrelError
from kestrel.domain.training_rules import MIN_IMAGES_PER_LABEL, MIN_LABELS, LabelCount, check_trainable


def _label(name: str, images: int) -> LabelCount:
    return LabelCount(label_id=f"id-{name}", name=name, images=images)


def _refusal(labels: list[LabelCount]) -> str:
    with pytest.raises(InvalidInput) as refused:
        check_trainable(labels)
    assert str(refused.value) == refused.value.detail
    return refused.value.detail


def test_the_minimums_are_two_labels_of_twenty_images() -> None:
    assert (MIN_LABELS, MIN_IMAGES_PER_LABEL) == (2, 20)


def test_two_labels_with_exactly_the_minimum_may_train_and_one_image_less_may_not() -> None:
    check_trainable([_label("cat", MIN_IMAGES_PER_LABEL), _label("dog", MIN_IMAGES_PER_LABEL)])  # no refusal
    _refusal([_label("cat", MIN_IMAGES_PER_LABEL), _label("dog", MIN_IMAGES_PER_LABEL - 1)])


def test_many_labels_well_over_the_minimum_may_train() -> None:
    check_trainable([_label(f"label {n}", 500 + n) for n in range(30)])  # no refusal


def test_no_labels_is_refused_saying_how_to_attach_them() -> None:
    detail = _refusal([])
    assert detail == (
        "cannot train yet: the task has 0 labels; it needs at least 2 (attach labels with task/{id}/add-label/)"
    )


def test_one_label_is_refused_in_the_singular_even_when_it_has_enough_images() -> None:
    detail = _refusal([_label("cat", 100)])
    assert detail.startswith("cannot train yet: the task has 1 label; it needs at least 2")
    assert "'cat'" not in detail  # the label itself is not short


def test_a_label_one_image_short_is_named_with_what_is_missing() -> None:
    detail = _refusal([_label("cat", 20), _label("dog", 19)])
    assert detail == "cannot train yet: label 'dog' has 19 images, 1 short of the 20 needed"


def test_a_label_with_one_image_is_counted_in_the_singular() -> None:
    detail = _refusal([_label("cat", 20), _label("dog", 1)])
    assert "label 'dog' has 1 image, 19 short of the 20 needed" in detail


def test_an_empty_label_is_short_of_all_twenty() -> None:
    detail = _refusal([_label("cat", 0), _label("dog", 25)])
    assert detail == "cannot train yet: label 'cat' has 0 images, 20 short of the 20 needed"


def test_every_short_label_is_named_in_the_order_given() -> None:
    detail = _refusal([_label("zebra", 3), _label("ant", 40), _label("bee", 12)])
    assert detail == (
        "cannot train yet: label 'zebra' has 3 images, 17 short of the 20 needed; "
        "label 'bee' has 12 images, 8 short of the 20 needed"
    )
    assert "'ant'" not in detail


def test_too_few_labels_and_short_labels_are_told_together() -> None:
    detail = _refusal([_label("cat", 5)])
    assert detail == (
        "cannot train yet: the task has 1 label; it needs at least 2 (attach labels with task/{id}/add-label/); "
        "label 'cat' has 5 images, 15 short of the 20 needed"
    )


def test_labels_are_named_by_their_name_not_their_id() -> None:
    detail = _refusal([LabelCount("0b6f-id", "Golden retriever", 2), _label("dog", 20)])
    assert "label 'Golden retriever' has 2 images" in detail
    assert "0b6f-id" not in detail


def test_the_refusal_is_a_user_error_with_its_detail() -> None:
    with pytest.raises(KestrelError) as refused:
        check_trainable([])
    assert type(refused.value) is InvalidInput
    assert refused.value.detail.startswith("cannot train yet: ")
