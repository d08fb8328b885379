"""Image bytes → backbone input. Training and classify both call this, so they see the same pixels.

Policy (chosen by measurement, see docs/preprocessing.md): upright RGB; the whole picture resized
to 256x256 ignoring its aspect ratio ("squash", antialiased bilinear); the centre 224x224 cut out;
``(x - 127) / 128``; channels first. On square photos this is exactly the reference's
256-resize + 224 centre crop; on 4:3, 3:2 and 2:3 photos it is about 2 points more accurate than
that crop, because a square centre crop throws away the sides (or top and bottom) of the scene.
JPEGs are decoded in Pillow's ``draft`` mode: the decoder scales by 1/2, 1/4 or 1/8 in the DCT
while keeping both sides ≥ 256, which makes big photos 2-3x cheaper at no measurable accuracy cost.
Other formats are decoded at full size and then reduced by whole factors while both sides stay
≥ 512 (``imagefile.decode``), so memory holds one full-size copy at most.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from PIL import Image

from kestrel.vision import imagefile
from kestrel.vision.imagefile import DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_PIXELS, DecodeLimits

INPUT_SIZE = 224
RESIZE = 256  # the first resize, before the centre INPUT_SIZE crop
MEAN = 127.0
STD = 128.0
RESAMPLE = Image.Resampling.BILINEAR  # antialiased when shrinking (Pillow scales the filter support)

#: "squash": both sides to ``resize``; "crop": the shorter side to ``resize``, keeping the aspect
#: ratio. Either way the centre ``INPUT_SIZE`` square is then cut.
Policy = Literal["crop", "squash"]
POLICY: Policy = "squash"

#: Changes whenever the pixels this module produces change (policy, sizes, filter, normalisation,
#: augmentation): put it in embedding cache keys next to the backbone id.
PREPROCESSING_ID = f"{POLICY}{RESIZE}-centre{INPUT_SIZE}-bilinear-m{MEAN:g}s{STD:g}-aug1-reduce{imagefile.REDUCING_GAP}"


def describe(
    *, policy: Policy = POLICY, input_size: int = INPUT_SIZE, resize: int = RESIZE, mean: float = MEAN, std: float = STD
) -> str:
    """One line for model cards: how an image becomes the model's input."""
    if policy == "squash":
        first = f"resize to {resize}x{resize} ignoring the aspect ratio"
    else:
        first = f"resize the shorter side to {resize}"
    return (
        f"EXIF-upright RGB (alpha on white); {first} (bilinear, antialiased); "
        f"centre crop {input_size}x{input_size}; (pixel - {mean:g}) / {std:g}; NCHW float32"
    )


def load_image(
    data: bytes,
    *,
    draft_side: int | None = RESIZE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    policy: Policy = POLICY,
) -> Image.Image:
    """Untrusted bytes → upright RGB picture, decoded no bigger than the first resize needs.

    With ``draft_side``, a JPEG is decoded smaller (DCT scaling) and any picture is reduced by
    whole factors, but never below 2 x the first resize (``policy`` at ``draft_side``) on a side;
    without it, every pixel is kept. Raises :class:`ImageRejected`."""
    limits = DecodeLimits(max_pixels=max_pixels, max_decoded_bytes=max_decoded_bytes)
    if draft_side is None:
        return imagefile.decode(data, imagefile.full_size, limits)
    side = draft_side

    def first_resize(width: int, height: int) -> tuple[int, int]:
        return _scaled_size(width, height, side, policy)

    return imagefile.decode(data, first_resize, limits)


def _scaled_size(width: int, height: int, side: int, policy: Policy = "crop") -> tuple[int, int]:
    """Size after the first resize: both sides to ``side`` (squash) or the shorter one (crop,
    rounded like torchvision's Resize)."""
    if policy == "squash":
        return side, side
    if width <= height:
        return side, max(side, int(side * height / width))
    return max(side, int(side * width / height)), side


def _crop_box(
    width: int, height: int, input_size: int, resize: int, policy: Policy
) -> tuple[float, float, float, float]:
    """The centre ``input_size`` square of the resized picture, in source pixels."""
    scaled_w, scaled_h = _scaled_size(width, height, resize, policy)
    # Rounded like torchvision's CenterCrop, so features match the reference pipeline.
    left = round((scaled_w - input_size) / 2)
    top = round((scaled_h - input_size) / 2)
    fx, fy = width / scaled_w, height / scaled_h
    return left * fx, top * fy, (left + input_size) * fx, (top + input_size) * fy


def fit(
    image: Image.Image, *, policy: Policy = POLICY, input_size: int = INPUT_SIZE, resize: int = RESIZE
) -> Image.Image:
    """Resize (``resize``: both sides for "squash", the shorter for "crop"), then cut the centre
    ``input_size`` square. Default: squashed to 256x256, centre 224x224."""
    if resize < input_size:
        raise ValueError("resize must be at least input_size")
    # One resize of the crop's source region (Pillow's ``box``) instead of resize-then-crop: the
    # same pixels (bit-identical when enlarging, ±1 level when shrinking) and up to 2x faster,
    # as the filter still reads the pixels just outside the box.
    box = _crop_box(image.width, image.height, input_size, resize, policy)
    return image.resize((input_size, input_size), RESAMPLE, box=box)


def to_array(image: Image.Image, *, mean: float = MEAN, std: float = STD) -> np.ndarray:
    """RGB picture → normalised float32 [3, H, W]."""
    pixels = np.asarray(image)  # uint8 [H, W, 3], no copy
    # Transpose the uint8 view and convert while subtracting: one pass, no float HWC temporary.
    out = np.subtract(pixels.transpose(2, 0, 1), np.float32(mean), dtype=np.float32, order="C")
    out /= np.float32(std)
    return out


def preprocess(
    data: bytes,
    *,
    policy: Policy = POLICY,
    input_size: int = INPUT_SIZE,
    resize: int = RESIZE,
    draft: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> np.ndarray:
    """Image bytes → float32 [3, input_size, input_size]. Raises :class:`ImageRejected`."""
    # The draft keeps both sides >= resize, as large as the first resize step needs.
    image = load_image(
        data,
        draft_side=resize if draft else None,
        max_pixels=max_pixels,
        max_decoded_bytes=max_decoded_bytes,
        policy=policy,
    )
    return to_array(fit(image, policy=policy, input_size=input_size, resize=resize))


def preprocess_batch(
    items: Sequence[bytes],
    *,
    policy: Policy = POLICY,
    input_size: int = INPUT_SIZE,
    resize: int = RESIZE,
    draft: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Several images → float32 [N, 3, input_size, input_size]; the first bad image raises
    :class:`ImageRejected` (call :func:`preprocess` per item to handle them one by one)."""
    batch = np.empty((len(items), 3, input_size, input_size), dtype=np.float32)
    for i, data in enumerate(items):
        batch[i] = preprocess(
            data, policy=policy, input_size=input_size, resize=resize, draft=draft, max_pixels=max_pixels
        )
    return batch


def augment_views(
    image: Image.Image | bytes,
    n: int,
    seed: int,
    *,
    policy: Policy = POLICY,
    input_size: int = INPUT_SIZE,
    resize: int = RESIZE,
    min_crop: float = 0.8,
) -> np.ndarray:
    """``n`` lightly augmented views as float32 [n, 3, input_size, input_size].

    Each view takes a random window of the region the plain input shows (the whole picture for
    "squash", the centre crop's region for "crop") covering ``min_crop``..1 of its width and,
    independently, of its height, at a random position, and is mirrored with probability 1/2.
    The same ``seed`` gives the same views, so cached augmented embeddings are reproducible.
    """
    if not 0 < min_crop <= 1:
        raise ValueError("min_crop must be in (0, 1]")
    if isinstance(image, bytes):
        picture = load_image(image, policy=policy)
    else:  # a picture from load_image (upright RGB); anything else is made RGB
        picture = image if image.mode == "RGB" else image.convert("RGB")
    # Big pictures are shrunk once, so each view is a cheap resize of a small one.
    if min(picture.size) > 2 * resize:
        picture = picture.resize(_scaled_size(picture.width, picture.height, 2 * resize), RESAMPLE)
    base = _crop_box(picture.width, picture.height, input_size, resize, policy)
    base_w, base_h = base[2] - base[0], base[3] - base[1]
    rng = np.random.default_rng(seed)
    views = np.empty((n, 3, input_size, input_size), dtype=np.float32)
    for i in range(n):
        width, height = base_w * rng.uniform(min_crop, 1.0), base_h * rng.uniform(min_crop, 1.0)
        left = base[0] + rng.uniform(0.0, base_w - width)
        top = base[1] + rng.uniform(0.0, base_h - height)
        view = picture.resize((input_size, input_size), RESAMPLE, box=(left, top, left + width, top + height))
        if rng.random() < 0.5:
            view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        views[i] = to_array(view)
    return views
