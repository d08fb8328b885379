"""Opening untrusted image bytes safely, in bounded memory.

Every path that reads an uploaded or fetched image goes through here (upload validation,
thumbnails, training and classify preprocessing), so the rules are the same everywhere:

* the header is checked first: an accepted format, a pixel limit;
* the decoder is told the size the caller needs *before* it decodes (JPEG ``draft`` scales in
  the DCT by 1/2..1/8), and the bytes that decode will take are checked against a byte budget;
* a picture decoded at full size (PNG, WebP, GIF, BMP, TIFF cannot be decoded smaller) is turned
  into RGB and shrunk by whole factors (``Image.reduce``) a strip of rows at a time, so the full
  size exists once, never as the 3-4 copies a whole-image convert/composite/transpose makes;
* at most :data:`FULL_SIZE_DECODES` big decodes run at once in a process (classify prepares its
  records in threads), so a request of ten huge images holds at most that many in memory.
"""

from __future__ import annotations

import io
import math
import struct
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

#: The formats an upload may have (Pillow's format names) and their MIME types.
ACCEPTED_FORMATS: dict[str, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "MPO": "image/jpeg",  # multi-picture JPEG from phone cameras: the first frame is a JPEG
}
DEFAULT_MAX_PIXELS = 50_000_000
#: What one decoded picture may take in memory (Pillow's own storage: 4 bytes a pixel for RGB,
#: RGBA, CMYK; 1 for grey and palette). 200 MB admits a 50-megapixel picture of any mode that
#: must be decoded at full size; a JPEG is decoded smaller and needs far less.
DEFAULT_MAX_DECODED_BYTES = 200_000_000
#: Decodes bigger than this take one of the process's FULL_SIZE_DECODES slots.
BIG_DECODE_BYTES = 16_000_000
FULL_SIZE_DECODES = 2
#: Reduce by whole factors while both sides stay at least this many times the target (Pillow's
#: ``reducing_gap`` idea): the final resize then still has enough pixels to antialias from.
REDUCING_GAP = 2
_STRIP_BYTES = 4_000_000  # rows converted at once: the only extra memory a full-size decode needs

# A truncated file must be an error, never a silently grey-padded picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Our own pixel limit is checked before decoding; Pillow's global one would only warn.
Image.MAX_IMAGE_PIXELS = None
# Pillow stores big pictures in blocks (16 MB by default). glibc serves blocks under 32 MB from
# per-thread arenas once its mmap threshold has adapted, and keeps them after they are freed: ten
# huge decodes on classify's threads left the process 700 MB bigger for good. Blocks of 64 MB
# are always mmap'd, so a decoded picture's memory goes back to the system when it is closed.
Image.core.set_block_size(64 * 1024 * 1024)

_DRAFT_FORMATS = ("JPEG", "MPO")
_SLOTS = threading.BoundedSemaphore(FULL_SIZE_DECODES)


class ImageRejected(ValueError):
    """The bytes are not an image Kestrel accepts; the message says why, for the user."""


@dataclass(frozen=True)
class ImageInfo:
    format: str
    mime: str
    width: int  # as displayed, after EXIF orientation
    height: int


@dataclass(frozen=True)
class DecodeLimits:
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES


#: (displayed width, displayed height) -> the smallest (width, height) the caller will use.
Target = Callable[[int, int], tuple[int, int]]


def full_size(width: int, height: int) -> tuple[int, int]:
    """A target that asks for every pixel (no draft, no reduction)."""
    return width, height


def bytes_per_pixel(mode: str) -> int:
    """What Pillow allocates per pixel: multi-band modes are stored in 4 bytes."""
    if mode.startswith("I;16"):
        return 2
    if mode in ("I", "F") or (len(mode) > 1 and Image.getmodebands(mode) > 1):
        return 4
    return 1


def _open_header(data: bytes, max_pixels: int) -> Image.Image:
    """The lazily opened image (header read, no pixel decoded), or why it is refused."""
    if not data:
        raise ImageRejected("the file is empty (0 bytes); send the image's bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageRejected(
            "the data is not an image in a supported format (JPEG, PNG, WebP, GIF, BMP or TIFF)"
        ) from None
    except (OSError, ValueError, SyntaxError) as error:  # Pillow's decoders raise all of these
        raise ImageRejected(f"the image header cannot be read: {error}") from None
    if image.format not in ACCEPTED_FORMATS:
        raise ImageRejected(f"{image.format} images are not accepted; use JPEG, PNG, WebP, GIF, BMP or TIFF")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageRejected("the image has no pixels")
    if width * height > max_pixels:
        raise ImageRejected(
            f"the image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,}; scale it down before uploading"
        )
    return image


# EXIF orientation -> the transpose that makes the picture upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# EXIF orientations that turn the picture a quarter: its displayed width is its stored height.
_QUARTER_TURNS = {5, 6, 7, 8}
_ORIENTATION_TAG = 0x0112


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation, read without decoding a pixel.

    A PNG's ``getexif()`` decodes the whole picture to look for an eXIf chunk after the pixel
    data: for an unloaded PNG only the chunks before the pixels are read (where the PNG spec
    puts eXIf); after ``load()`` the rest are known too."""
    try:
        if image.format == "PNG" and not _is_loaded(image):
            exif = Image.Exif()
            raw = image.info.get("exif")
            if isinstance(raw, bytes):
                exif.load(raw)
        else:
            exif = image.getexif()
        value = exif.get(_ORIENTATION_TAG)
    except (OSError, ValueError, SyntaxError, struct.error):  # damaged EXIF: shown as stored
        return 1
    return value if isinstance(value, int) and value in _UPRIGHT else 1


def _is_loaded(image: Image.Image) -> bool:
    return getattr(image, "_im", None) is not None or not getattr(image, "tile", None)


def _upright_size(image: Image.Image) -> tuple[int, int]:
    """Width and height as displayed, read from the EXIF orientation (no pixels are moved)."""
    width, height = image.size
    return (height, width) if _orientation(image) in _QUARTER_TURNS else (width, height)


def _info(image: Image.Image) -> ImageInfo:
    fmt = str(image.format)
    width, height = _upright_size(image)
    return ImageInfo(format=fmt, mime=ACCEPTED_FORMATS[fmt], width=width, height=height)


def read_header(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """What the bytes claim to be (format, displayed size), checked against the pixel limit;
    nothing is decoded, so this proves nothing about the pixel data."""
    return _info(_open_header(data, max_pixels))


def displayed_size(data: bytes) -> tuple[int, int]:
    """The displayed size from the header alone, for bytes already proven to be an image."""
    with Image.open(io.BytesIO(data)) as image:
        return _upright_size(image)


def _check_budget(image: Image.Image, max_bytes: int) -> int:
    width, height = image.size
    needed = width * height * bytes_per_pixel(image.mode)
    if needed > max_bytes:
        raise ImageRejected(
            f"decoding the image ({width}x{height}, {image.mode}) takes {needed / 1e6:,.0f} MB, over the "
            f"budget of {max_bytes / 1e6:,.0f} MB per image; scale it down or send it as a JPEG"
        )
    return needed


@contextmanager
def _decode_slot(needed_bytes: int) -> Iterator[None]:
    """Big decodes wait for one of the process's few slots; small ones never wait."""
    if needed_bytes <= BIG_DECODE_BYTES:
        yield
        return
    with _SLOTS:
        yield


def _reduction(size: tuple[int, int], need: tuple[int, int]) -> tuple[int, int]:
    """Whole factors per axis that keep each side at least REDUCING_GAP x what is needed."""
    return tuple(max(1, have // max(1, REDUCING_GAP * want)) for have, want in zip(size, need, strict=True))  # type: ignore[return-value]


def _strip_to_rgb(strip: Image.Image) -> Image.Image:
    """A strip of rows as RGB: palette, grey, CMYK converted; alpha laid on white."""
    mode = strip.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in strip.info):
        rgba = strip if mode == "RGBA" else strip.convert("RGBA")
        out = Image.new("RGB", rgba.size, (255, 255, 255))
        out.paste(rgba, mask=rgba)
        return out
    if mode.startswith("I;16") or mode == "I":
        # 16/32-bit grey: scale to 8 bits rather than clipping everything to white.
        strip = strip.point(lambda v: v / 256).convert("L")
    elif mode == "F":
        strip = strip.convert("L")
    return strip if strip.mode == "RGB" else strip.convert("RGB")


def _to_rgb_reduced(image: Image.Image, factors: tuple[int, int]) -> Image.Image:
    """RGB, reduced by ``factors``, converting a strip of rows at a time (no full-size copy)."""
    fx, fy = factors
    if image.mode == "RGB" and fx == fy == 1:
        return image
    width, height = image.size
    out = Image.new("RGB", (math.ceil(width / fx), math.ceil(height / fy)))
    rows = max(fy, _STRIP_BYTES // (4 * width) // fy * fy)  # a multiple of fy: blocks never straddle strips
    for top in range(0, height, rows):
        strip = _strip_to_rgb(image.crop((0, top, width, min(height, top + rows))))
        if fx > 1 or fy > 1:
            strip = strip.reduce((fx, fy))
        out.paste(strip, (0, top // fy))
    return out


def decode(data: bytes, target: Target, limits: DecodeLimits = DecodeLimits()) -> Image.Image:
    """Untrusted bytes -> upright RGB picture, at least ``target(width, height)`` (displayed) in
    size where the picture has that many pixels, and at most a full-size decode in memory.

    Raises :class:`ImageRejected` with a sentence for the user."""
    image = _open_header(data, limits.max_pixels)
    orientation = _orientation(image)
    width, height = image.size
    quarter = orientation in _QUARTER_TURNS
    want_w, want_h = target(*((height, width) if quarter else (width, height)))
    need = (want_h, want_w) if quarter else (want_w, want_h)  # in stored orientation
    if image.format in _DRAFT_FORMATS:
        image.draft("RGB", need)  # the decoder scales in the DCT; both sides stay >= need
    needed = _check_budget(image, limits.max_decoded_bytes)
    with _decode_slot(needed):
        try:
            image.load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            raise ImageRejected(f"the image data is damaged or truncated: {error}") from None
        if image.format == "PNG":  # an eXIf chunk after the pixel data is known only now
            orientation = _orientation(image)
        try:
            rgb = _to_rgb_reduced(image, _reduction(image.size, need))
        except ValueError as error:  # a colour mode Pillow cannot convert
            raise ImageRejected(f"the image's colour mode {image.mode} cannot be read: {error}") from None
        if rgb is not image:
            image.close()  # frees the full-size pixels before the slot is given back
    if orientation in _UPRIGHT:
        rgb = rgb.transpose(_UPRIGHT[orientation])
    return rgb


def check_and_thumbnail(
    data: bytes, limits: DecodeLimits = DecodeLimits(), max_side: int = 256
) -> tuple[ImageInfo, bytes]:
    """Prove ``data`` is a whole, accepted image (every pixel is decoded) and make its JPEG
    thumbnail, no larger than ``max_side`` on its longer side, upright."""
    info = read_header(data, limits.max_pixels)

    def within_box(width: int, height: int) -> tuple[int, int]:
        longer = max(width, height)
        return max(1, max_side * width // longer), max(1, max_side * height // longer)

    image = decode(data, within_box, limits)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85, optimize=True)
    return info, out.getvalue()
