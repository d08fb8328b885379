"""Real photos for tests, from scikit-image's bundled samples (no network, nothing committed)."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from PIL import Image
from skimage import data as samples

SAMPLE_NAMES = ("chelsea", "coffee", "rocket", "astronaut", "motorcycle")


@cache
def sample(name: str) -> Image.Image:
    if name == "motorcycle":
        array = samples.stereo_motorcycle()[0]
    else:
        array = getattr(samples, name)()
    return Image.fromarray(np.asarray(array)).convert("RGB")


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def photo(name: str = "chelsea", side: int = 160, fmt: str = "JPEG") -> bytes:
    """A real photo scaled to fit ``side`` pixels, encoded as ``fmt``."""
    image = sample(name).copy()
    image.thumbnail((side, side))
    return encode(image, fmt)


def distinct_photos(count: int, name: str = "coffee", side: int = 96) -> list[bytes]:
    """``count`` different JPEGs (crops of one real photo at different places and sizes)."""
    base = sample(name)
    width, height = base.size
    result: list[bytes] = []
    for index in range(count):
        box_side = min(width, height) // 2 + (index % 7) * 9
        left = (index * 37) % max(1, width - box_side)
        top = (index * 53) % max(1, height - box_side)
        crop = base.crop((left, top, left + box_side, top + box_side)).resize((side, side))
        result.append(encode(crop))
    assert len(set(result)) == count, "crops must differ byte for byte"
    return result
