"""The rules of training: who may train, and how images are split. No I/O here."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from kestrel.domain.errors import InvalidInput

MIN_LABELS = 2
MIN_IMAGES_PER_LABEL = 20
TEST_FRACTION = 0.2
SPLIT_SEED = 20261124


@dataclass(frozen=True)
class LabelCount:
    label_id: str
    name: str
    images: int


def check_trainable(labels: Sequence[LabelCount]) -> None:
    """Refuse with a detail that names every label that is short, and by how many images."""
    problems = []
    if len(labels) < MIN_LABELS:
        problems.append(
            f"the task has {len(labels)} label{'s' if len(labels) != 1 else ''}; "
            f"it needs at least {MIN_LABELS} (attach labels with task/{{id}}/add-label/)"
        )
    short = [label for label in labels if label.images < MIN_IMAGES_PER_LABEL]
    for label in short:
        missing = MIN_IMAGES_PER_LABEL - label.images
        problems.append(
            f"label '{label.name}' has {label.images} image{'s' if label.images != 1 else ''}, "
            f"{missing} short of the {MIN_IMAGES_PER_LABEL} needed"
        )
    if problems:
        raise InvalidInput("cannot train yet: " + "; ".join(problems))


@dataclass(frozen=True)
class SplitImage:
    image_id: str
    labels: tuple[str, ...]  # the task's labels this image carries (sorted); empty: a negative
    forced_test: bool  # marked test_image by the user


def split(images: Sequence[SplitImage], test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED) -> dict[str, str]:
    """image id -> "train" | "test": stratified by label set, fixed seed, user's test images kept in test.

    Within each stratum (same label set) the images are ordered by a hash of their id and then
    shuffled with the fixed seed, so the split does not depend on upload order and is the same
    every time the same images are trained."""
    result: dict[str, str] = {}
    strata: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for image in images:
        if image.forced_test:
            result[image.image_id] = "test"
        else:
            strata[image.labels].append(image.image_id)
    rng = random.Random(seed)
    for key in sorted(strata):
        members = sorted(strata[key], key=lambda image_id: hashlib.sha256(image_id.encode()).hexdigest())
        rng.shuffle(members)
        forced = sum(1 for image in images if image.forced_test and image.labels == key)
        wanted = round((len(members) + forced) * test_fraction) - forced
        # Every stratum with at least 2 images keeps one for evaluation and one for training.
        n_test = max(0, min(len(members) - 1, wanted if len(members) >= 2 else 0))
        if len(members) >= 2 and forced == 0:
            n_test = max(n_test, 1)
        for index, image_id in enumerate(members):
            result[image_id] = "test" if index < n_test else "train"
    return result


#: The failure reason when what went wrong is not the owner's to fix: the log has the details.
UNEXPECTED_FAILURE = (
    "the training job failed unexpectedly; train again, and if it fails again ask the operator to check the log"
)
