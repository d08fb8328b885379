"""Opening untrusted image bytes safely: format check, pixel limit before decoding, RGB conversion.

Every path that reads an uploaded or fetched image goes through here (upload validation,
thumbnails, training and classify preprocessing), so the rules are the same everywhere.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

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

# A truncated file must be an error, never a silently grey-padded picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Our own pixel limit is checked before decoding; Pillow's global one would only warn.
Image.MAX_IMAGE_PIXELS = None


class ImageRejected(ValueError):
    """The bytes are not an image Kestrel accepts; the message says why, for the user."""


@dataclass(frozen=True)
class ImageInfo:
    format: str
    mime: str
    width: int  # as displayed, after EXIF orientation
    height: int


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open and fully decode ``data``; the header's size is checked before any pixel is decoded."""
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
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageRejected(f"the image data is damaged or truncated: {error}") from None
    return image


# EXIF orientations that turn the picture a quarter: its displayed width is its stored height.
_QUARTER_TURNS = {5, 6, 7, 8}
_ORIENTATION_TAG = 0x0112


def _upright_size(image: Image.Image) -> tuple[int, int]:
    """Width and height as displayed, read from the EXIF orientation (no pixels are moved)."""
    width, height = image.size
    try:
        orientation = image.getexif().get(_ORIENTATION_TAG)
    except (OSError, ValueError, SyntaxError):  # damaged EXIF: shown as stored
        orientation = None
    return (height, width) if orientation in _QUARTER_TURNS else (width, height)


def describe(image: Image.Image) -> ImageInfo:
    """What an opened image is: format, MIME type, displayed size."""
    fmt = str(image.format)
    width, height = _upright_size(image)
    return ImageInfo(format=fmt, mime=ACCEPTED_FORMATS[fmt], width=width, height=height)


def inspect_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Prove ``data`` is a whole, accepted image and say what it is."""
    return describe(open_image(data, max_pixels))


def displayed_size(data: bytes) -> tuple[int, int]:
    """The displayed size from the header alone, for bytes already proven to be an image."""
    with Image.open(io.BytesIO(data)) as image:
        return _upright_size(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright RGB: EXIF orientation applied; palette, grey, CMYK converted; alpha laid on white."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: scale to 8 bits rather than clipping everything to white.
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def load_rgb(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open untrusted bytes as an upright RGB picture."""
    return to_rgb(open_image(data, max_pixels))


def make_thumbnail(opened: Image.Image, max_side: int = 256) -> bytes:
    """A JPEG of an opened image, no larger than ``max_side`` on its longer side, upright."""
    image = to_rgb(opened)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()
