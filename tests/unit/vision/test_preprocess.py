"""Preprocessing: every accepted format and colour mode becomes the right upright RGB input."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from kestrel.vision.imagefile import ImageRejected
from kestrel.vision.preprocess import (
    INPUT_SIZE,
    PREPROCESSING_ID,
    augment_views,
    describe,
    fit,
    load_image,
    preprocess,
    preprocess_batch,
    to_array,
)

RED = (220, 30, 40)
BLUE = (20, 40, 210)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def pixel(value: float) -> float:
    """The normalised input value of an 8-bit level."""
    return (value - 127.0) / 128.0


def mean_rgb(x: np.ndarray) -> np.ndarray:
    return x.reshape(3, -1).mean(axis=1)


def solid(mode: str = "RGB", colour: object = RED, size: tuple[int, int] = (80, 60)) -> Image.Image:
    return Image.new(mode, size, colour)  # type: ignore[arg-type]


def rgba_half_transparent() -> Image.Image:
    image = Image.new("RGBA", (80, 60), (*RED, 255))
    image.paste((0, 0, 0, 0), (0, 0, 80, 30))  # top half: fully transparent black
    return image


def palette_with_transparency() -> Image.Image:
    image = Image.new("P", (80, 60), 1)
    image.putpalette([0, 0, 0, *RED] + [0] * (254 * 3))
    image.paste(0, (0, 0, 80, 30))  # index 0 (black) is the transparent one
    image.info["transparency"] = 0
    return image


def grey16() -> Image.Image:
    return Image.fromarray(np.full((60, 80), 128 * 256, dtype=np.uint16))  # mid grey, 16-bit


# name → (bytes factory, expected mean RGB of the top half, of the bottom half, tolerance in levels)
CASES: dict[str, tuple[Callable[[], bytes], tuple[int, ...], tuple[int, ...], float]] = {
    "jpeg": (lambda: encode(solid(), "JPEG", quality=95), RED, RED, 6),
    "progressive jpeg": (lambda: encode(solid(), "JPEG", progressive=True), RED, RED, 6),
    "png rgb": (lambda: encode(solid(), "PNG"), RED, RED, 0.5),
    "png rgba, transparency on white": (lambda: encode(rgba_half_transparent(), "PNG"), (255,) * 3, RED, 0.5),
    "png palette + transparency": (lambda: encode(palette_with_transparency(), "PNG"), (255,) * 3, RED, 0.5),
    "png 16-bit grey": (lambda: encode(grey16(), "PNG"), (128,) * 3, (128,) * 3, 1),
    "png 8-bit grey": (lambda: encode(solid("L", 90), "PNG"), (90,) * 3, (90,) * 3, 0.5),
    "webp lossless": (lambda: encode(solid(), "WEBP", lossless=True), RED, RED, 0.5),
    "webp lossy": (lambda: encode(solid(), "WEBP", quality=90), RED, RED, 8),
    "gif": (lambda: encode(solid().quantize(colors=4), "GIF"), RED, RED, 0.5),
    "bmp": (lambda: encode(solid(), "BMP"), RED, RED, 0.5),
    "tiff": (lambda: encode(solid(), "TIFF"), RED, RED, 0.5),
    "tiff rgba": (lambda: encode(rgba_half_transparent(), "TIFF"), (255,) * 3, RED, 0.5),
    "cmyk jpeg": (
        lambda: encode(solid("CMYK", (0, 255, 255, 0)), "JPEG", quality=95),
        (255, 0, 0),
        (255, 0, 0),
        8,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_formats_and_colour_modes_become_the_expected_rgb(case: str) -> None:
    factory, top, bottom, tolerance = CASES[case]
    x = preprocess(factory())
    assert x.shape == (3, INPUT_SIZE, INPUT_SIZE)
    assert x.dtype == np.float32
    assert x.flags["C_CONTIGUOUS"]
    # Rows near the middle blend both halves in the resize; compare well inside each half.
    np.testing.assert_allclose(mean_rgb(x[:, :90]), [pixel(v) for v in top], atol=tolerance / 128)
    np.testing.assert_allclose(mean_rgb(x[:, -90:]), [pixel(v) for v in bottom], atol=tolerance / 128)


def upright_red_over_blue() -> Image.Image:
    image = Image.new("RGB", (96, 64), RED)
    image.paste(BLUE, (0, 32, 96, 64))
    return image


@pytest.mark.parametrize(
    ("orientation", "stored"),
    [(6, Image.Transpose.ROTATE_90), (3, Image.Transpose.ROTATE_180), (8, Image.Transpose.ROTATE_270)],
)
def test_exif_orientation_is_applied(orientation: int, stored: Image.Transpose) -> None:
    # A camera stores the sensor's pixels and says in EXIF how to turn them upright.
    raw = upright_red_over_blue().transpose(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(raw, "JPEG", quality=95, exif=exif)
    x = preprocess(data)
    np.testing.assert_allclose(mean_rgb(x[:, :90]), [pixel(v) for v in RED], atol=8 / 128)
    np.testing.assert_allclose(mean_rgb(x[:, -90:]), [pixel(v) for v in BLUE], atol=8 / 128)


def test_normalisation_is_x_minus_127_over_128() -> None:
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = Image.fromarray(np.stack([levels] * 3, axis=-1))
    x = to_array(image)
    assert x.shape == (3, 16, 16)
    np.testing.assert_array_equal(x[0], (levels.astype(np.float32) - 127) / 128)


def test_crop_policy_keeps_the_centre_square_and_squash_keeps_the_sides() -> None:
    # 400x200 with a red left quarter: the square centre crop drops it, squash keeps it.
    image = Image.new("RGB", (400, 200), BLUE)
    image.paste(RED, (0, 0, 100, 200))
    data = encode(image, "PNG")
    cropped = preprocess(data, policy="crop", resize=256)
    squashed = preprocess(data)  # default: squash to 256x256, centre 224: keeps 87.5% of each side
    full = preprocess(data, policy="squash", resize=224)
    assert np.allclose(mean_rgb(cropped), [pixel(v) for v in BLUE], atol=1 / 128)
    assert mean_rgb(squashed[:, :, :30])[0] == pytest.approx(pixel(RED[0]), abs=1 / 128)
    assert mean_rgb(full[:, :, :50])[0] == pytest.approx(pixel(RED[0]), abs=1 / 128)


def test_square_pictures_get_the_reference_crop() -> None:
    data = encode(Image.fromarray(np.random.default_rng(2).integers(0, 256, (300, 300, 3), dtype=np.uint8)), "PNG")
    np.testing.assert_array_equal(preprocess(data), preprocess(data, policy="crop", resize=256))


def test_draft_mode_shrinks_big_jpegs_but_not_below_the_resize_side() -> None:
    rng = np.random.default_rng(0)
    # Smooth content, like a photo: a random field upscaled.
    small = Image.fromarray(rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8))
    data = encode(small.resize((2000, 1500), Image.Resampling.BICUBIC), "JPEG", quality=92)
    drafted = load_image(data)
    assert drafted.size == (500, 375)  # 1/4 scale: the largest that keeps both sides >= 256
    assert load_image(data, draft_side=None).size == (2000, 1500)
    with_draft = preprocess(data)
    without = preprocess(data, draft=False)
    assert np.abs(with_draft - without).mean() < 2 / 128  # under 2 levels on average


def test_rejects_what_is_not_an_image() -> None:
    with pytest.raises(ImageRejected):
        preprocess(b"")
    with pytest.raises(ImageRejected):
        preprocess(b"definitely not an image")
    truncated = encode(solid(size=(400, 300)), "JPEG")[:600]
    with pytest.raises(ImageRejected):
        preprocess(truncated)
    with pytest.raises(ImageRejected, match="over the limit"):
        preprocess(encode(solid(size=(400, 300)), "JPEG"), max_pixels=10_000)
    with pytest.raises(ImageRejected, match="over the limit"):
        preprocess(encode(solid(size=(400, 300)), "PNG"), max_pixels=10_000)


def test_description_and_id_follow_the_policy() -> None:
    assert "256x256 ignoring the aspect ratio" in describe()
    assert "centre crop 224x224" in describe()
    assert "shorter side to 256" in describe(policy="crop")
    assert PREPROCESSING_ID == "squash256-centre224-bilinear-m127s128-aug1-reduce2"


def test_batch_stacks_single_results() -> None:
    items = [encode(solid(), "PNG"), encode(upright_red_over_blue(), "JPEG")]
    batch = preprocess_batch(items)
    assert batch.shape == (2, 3, INPUT_SIZE, INPUT_SIZE)
    for i, data in enumerate(items):
        np.testing.assert_array_equal(batch[i], preprocess(data))
    assert preprocess_batch([]).shape == (0, 3, INPUT_SIZE, INPUT_SIZE)


def test_fit_always_gives_the_input_size() -> None:
    for size in [(1, 1), (3000, 7), (7, 3000), (224, 224), (225, 300)]:
        image = Image.new("RGB", size, RED)
        assert fit(image).size == (INPUT_SIZE, INPUT_SIZE)
        assert fit(image, policy="squash").size == (INPUT_SIZE, INPUT_SIZE)


def test_augment_views_are_reproducible_varied_and_light() -> None:
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)).resize((640, 480))
    views = augment_views(image, 8, seed=7)
    assert views.shape == (8, 3, INPUT_SIZE, INPUT_SIZE)
    assert views.dtype == np.float32
    np.testing.assert_array_equal(views, augment_views(encode(image, "PNG"), 8, seed=7))
    assert not np.array_equal(views, augment_views(image, 8, seed=8))
    assert len({v.tobytes() for v in views}) == 8
    # Light: each view still looks like the picture (mean colour within a few levels of the plain input).
    plain = to_array(fit(image))
    assert np.abs(views.reshape(8, 3, -1).mean(axis=2) - mean_rgb(plain)).max() < 0.1
    # Some views are mirrored: a left/right split picture shows its right colour on the left.
    halves = Image.new("RGB", (300, 200), RED)
    halves.paste(BLUE, (150, 0, 300, 200))
    flipped = [v[0, :, :50].mean() < 0 for v in augment_views(halves, 16, seed=1)]  # blue on the left
    assert 0 < sum(flipped) < 16
