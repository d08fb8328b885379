"""The 80/20 split follows the images' contents: same photos, same parts, whatever their ids
and upload order; adding photos moves none of the others."""

from __future__ import annotations

import hashlib
import random

from kestrel.domain.training_rules import SplitImage, split


def _images(count: int, label: str, salt: str = "") -> list[tuple[str, str]]:
    """(content hash, label) of ``count`` made-up photos."""
    return [(hashlib.sha256(f"{label}{salt}{n}".encode()).hexdigest(), label) for n in range(count)]


def _split_by_content(photos: list[tuple[str, str]], ids: list[str]) -> dict[str, str]:
    parts = split(
        [SplitImage(image_id, (label,), False, sha) for image_id, (sha, label) in zip(ids, photos, strict=True)]
    )
    return {sha: parts[image_id] for image_id, (sha, _) in zip(ids, photos, strict=True)}


def test_same_photos_same_split_whatever_the_ids_and_the_order() -> None:
    photos = _images(25, "cat") + _images(30, "dog")
    first = _split_by_content(photos, [f"id-{n}" for n in range(len(photos))])
    shuffled = list(photos)
    random.Random(7).shuffle(shuffled)
    second = _split_by_content(shuffled, [f"other-{n:04x}" for n in range(len(shuffled))])
    assert first == second
    assert sum(part == "test" for part in first.values()) == 5 + 6  # 20 % of each label


def test_adding_photos_moves_none_of_the_others_into_training() -> None:
    photos = _images(25, "cat")
    before = _split_by_content(photos, [f"a{n}" for n in range(25)])
    after = _split_by_content(photos + _images(25, "cat", salt="more"), [f"b{n}" for n in range(50)])
    assert {sha for sha, part in after.items() if part == "train" and sha in before} >= {
        sha for sha, part in before.items() if part == "train"
    }
    assert sum(part == "test" for part in after.values()) == 10


def test_images_marked_for_testing_stay_in_the_test_part() -> None:
    photos = _images(20, "cat")
    images = [SplitImage(f"i{n}", ("cat",), n < 3, sha) for n, (sha, _) in enumerate(photos)]
    parts = split(images)
    assert all(parts[f"i{n}"] == "test" for n in range(3))
    assert sum(part == "test" for part in parts.values()) == 4  # 20 % of 20, the 3 marked included
