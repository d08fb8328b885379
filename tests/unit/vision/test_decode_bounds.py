"""Decoding in bounded memory: the byte budget, reduction at decode, one full-size copy at most."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from kestrel.vision import imagefile
from kestrel.vision.imagefile import (
    DecodeLimits,
    ImageRejected,
    bytes_per_pixel,
    check_and_thumbnail,
    decode,
    full_size,
)
from kestrel.vision.preprocess import preprocess


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def squash(width: int, height: int) -> tuple[int, int]:
    return 256, 256


def big_rgba_png(side: int = 3000) -> bytes:
    """A picture that only a full-size decode can read: RGBA PNG, half transparent."""
    image = Image.new("RGBA", (side, side), (200, 30, 40, 255))
    image.paste((0, 0, 0, 0), (0, 0, side, side // 2))  # top half transparent black
    return encode(image, "PNG")


def test_bytes_per_pixel_is_what_pillow_allocates() -> None:
    expected = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I": 4, "F": 4, "LA": 4, "RGB": 4, "RGBA": 4, "CMYK": 4}
    for mode, size in expected.items():
        assert bytes_per_pixel(mode) == size, mode  # RGB too: Pillow keeps it in 4 bytes a pixel


def test_the_byte_budget_refuses_a_full_size_decode_before_it_happens() -> None:
    data = big_rgba_png(2000)  # 2000 x 2000 x 4 bytes = 16 MB decoded
    limits = DecodeLimits(max_pixels=50_000_000, max_decoded_bytes=10_000_000)
    with pytest.raises(ImageRejected, match=r"takes 16 MB, over the budget of 10 MB"):
        decode(data, squash, limits)
    with pytest.raises(ImageRejected, match="budget"):
        check_and_thumbnail(data, limits)
    with pytest.raises(ImageRejected, match="budget"):
        preprocess(data, max_decoded_bytes=10_000_000)
    # Within the budget the same picture decodes.
    assert decode(data, squash, DecodeLimits(max_decoded_bytes=16_000_000)).mode == "RGB"


def test_a_jpeg_is_budgeted_at_the_size_it_is_decoded_to() -> None:
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).resize((4000, 3000))
    data = encode(photo, "JPEG", quality=90)  # 48 MB at full size, 0.75 MB at 1/8
    limits = DecodeLimits(max_decoded_bytes=2_000_000)
    assert decode(data, squash, limits).size == (500, 375)  # drafted at 1/8: both sides >= 256
    with pytest.raises(ImageRejected, match="budget"):
        decode(data, full_size, limits)  # every pixel would take 48 MB


def test_reduction_keeps_twice_the_target_and_lays_alpha_on_white() -> None:
    picture = decode(big_rgba_png(3000), squash)
    assert picture.mode == "RGB"
    assert picture.size == (600, 600)  # reduced by 5: the largest factor keeping >= 512 a side
    pixels = np.asarray(picture)
    assert (pixels[:250] == 255).all()  # transparent black laid on white is white
    assert np.abs(pixels[350:].astype(int) - (200, 30, 40)).max() <= 1


def test_squash_reduces_each_axis_on_its_own() -> None:
    data = encode(Image.new("RGBA", (6000, 300), (10, 200, 10, 255)), "PNG")
    assert decode(data, squash).size == (546, 300)  # 6000 / 11 (rounded up); 300 < 512 stays


def test_the_result_is_the_same_picture_as_a_full_decode() -> None:
    rng = np.random.default_rng(1)
    smooth = Image.fromarray(rng.integers(0, 256, (40, 40, 4), dtype=np.uint8), "RGBA").resize((2400, 2400))
    data = encode(smooth, "PNG")
    reduced = preprocess(data)
    full = preprocess(data, draft=False)  # every pixel, resized once
    assert np.abs(reduced - full).mean() < 2 / 128  # under 2 levels on average


def test_exif_orientation_is_applied_after_reduction() -> None:
    image = Image.new("RGB", (1600, 1200), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 800, 1200))  # left half red as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed turned a quarter clockwise: red on top
    data = encode(image, "PNG", exif=exif)
    upright = decode(data, lambda width, height: (width // 4, height // 4))  # keeps the aspect
    assert upright.size == (600, 800)  # reduced by 2, then turned: portrait, as displayed
    pixels = np.asarray(upright)
    assert pixels[5, upright.size[0] // 2, 0] > 200 and pixels[-5, upright.size[0] // 2, 2] > 200


def test_thumbnail_of_an_extreme_panorama_is_small_and_proves_the_pixels() -> None:
    data = encode(Image.new("RGBA", (20_000, 200), (0, 0, 0, 128)), "PNG")
    info, thumbnail = check_and_thumbnail(data)
    assert (info.format, info.width, info.height) == ("PNG", 20_000, 200)
    with Image.open(io.BytesIO(thumbnail)) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 256
    with pytest.raises(ImageRejected, match="damaged or truncated"):
        check_and_thumbnail(data[: len(data) // 2])


def test_at_most_the_fixed_number_of_big_decodes_run_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    running = 0
    most = 0
    lock = threading.Lock()
    real = imagefile._to_rgb_reduced

    def counted(image: Image.Image, factors: tuple[int, int]) -> Image.Image:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)  # hold the slot long enough for the others to pile up
        try:
            return real(image, factors)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(imagefile, "_to_rgb_reduced", counted)
    data = big_rgba_png(2100)  # 17.6 MB decoded: over BIG_DECODE_BYTES, takes a slot
    threads = [threading.Thread(target=decode, args=(data, squash)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == imagefile.FULL_SIZE_DECODES
