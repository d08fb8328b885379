"""Malformed and hostile images into upload (``POST training-image/``) and classify.

Every input is either accepted cleanly (201 with sane dimensions) or refused with a 4xx and a JSON
``detail`` (upload) / a 4xx ``_status`` (classify); never a 5xx, and the server keeps serving.
"""

from __future__ import annotations

import base64
import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.api.http import Api
from tests.conftest import RunningServer
from tests.flow.conftest import TrainableTask, trained_server
from tests.photos import encode, photo, sample
from tests.soak import SOAK, examples
from tests.soak import record as soak_record

MUTATIONS = examples(short=30, soak=1000)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_bomb() -> bytes:
    """A valid-looking PNG header declaring 100000 x 100000 pixels (10 gigapixels)."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _gif_bomb() -> bytes:
    screen = struct.pack("<HHBBB", 65535, 65535, 0x80, 0, 0)
    palette = b"\x00\x00\x00\xff\xff\xff"
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0)
    return b"GIF89a" + screen + palette + descriptor + b"\x02\x02\x44\x01\x00;"


def _bmp_bomb() -> bytes:
    width = height = 60_000
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 16, 0, 0, 54) + header + b"\x00" * 16


def _tiff_bomb() -> bytes:
    entries = [
        (256, 4, 1, 1_000_000),  # ImageWidth (LONG)
        (257, 4, 1, 1_000_000),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: black is zero
        (273, 4, 1, 8),  # StripOffsets
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, 1_000_000),  # RowsPerStrip
        (279, 4, 1, 16),  # StripByteCounts
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, value)
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 24) + b"\x00" * 16 + ifd


def _webp_bomb() -> bytes:
    """VP8X header declaring 16384 x 16384 (the format's maximum), no real bitstream."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (16383).to_bytes(3, "little") * 2
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def _jpeg_bomb() -> bytes:
    """A real small JPEG whose SOF0 frame header is patched to claim 65500 x 65500."""
    data = bytearray(photo("chelsea", 64))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65500, 65500)
    return bytes(data)


def _exif_jpeg(orientation: int | None = None, raw_exif: bytes | None = None) -> bytes:
    image = sample("chelsea").copy()
    image.thumbnail((96, 96))
    out = io.BytesIO()
    if raw_exif is not None:
        image.save(out, "JPEG", exif=raw_exif)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def _malformed_ifd() -> bytes:
    # A TIFF header whose IFD offset points far past the end, and a second one with 65535 entries.
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 0x7FFFFFF0)


def _looping_ifd() -> bytes:
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x8769, 4, 1, 8) + struct.pack("<I", 8)  # ExifIFD -> itself
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd


def _gif_zip_polyglot() -> bytes:
    gif = encode(sample("coffee").copy().resize((32, 32)).convert("P"), "GIF")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("payload.html", "<script>alert(1)</script>")
    return gif + archive.getvalue()


def _animated_gif() -> bytes:
    frames = [sample("chelsea").copy().resize((48, 48)).convert("P") for _ in range(3)]
    frames[1] = frames[1].rotate(90)
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return out.getvalue()


def _png16() -> bytes:
    grey = np.asarray(sample("coffee").convert("L").resize((64, 64)), dtype=np.uint16) * 257
    return encode(Image.fromarray(grey.astype(np.uint16)), "PNG")


def _cases() -> dict[str, bytes]:
    jpeg = photo("chelsea", 120)
    png = photo("coffee", 120, "PNG")
    cases: dict[str, bytes] = {
        "zero-byte": b"",
        "one-byte": b"\xff",
        "jpeg-magic-only": b"\xff\xd8\xff",
        "png-bomb-100000x100000": _png_bomb(),
        "gif-bomb-65535x65535": _gif_bomb(),
        "bmp-bomb-60000x60000": _bmp_bomb(),
        "tiff-bomb-1000000x1000000": _tiff_bomb(),
        "webp-bomb-16384x16384": _webp_bomb(),
        "jpeg-sof-65500x65500": _jpeg_bomb(),
        "exif-orientation-0": _exif_jpeg(0),
        "exif-orientation-9": _exif_jpeg(9),
        "exif-orientation-65535": _exif_jpeg(65535),
        "exif-ifd-offset-past-end": _exif_jpeg(raw_exif=_malformed_ifd()),
        "exif-ifd-loop": _exif_jpeg(raw_exif=_looping_ifd()),
        "gif-zip-polyglot": _gif_zip_polyglot(),
        "jpeg-html-polyglot": jpeg + b"<html><script>alert(1)</script></html>",
        "png-trailing-data": png + b"\x00TRAILER" * 64,
        "animated-gif": _animated_gif(),
        "1x1-png": encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"),
        "1x1-jpeg": encode(Image.new("RGB", (1, 1), (10, 200, 10)), "JPEG"),
        "16-bit-png": _png16(),
        "cmyk-tiff": encode(sample("chelsea").copy().resize((64, 64)).convert("CMYK"), "TIFF"),
    }
    for fraction in (0.1, 0.5, 0.9, 0.99):
        cases[f"jpeg-truncated-{fraction}"] = jpeg[: int(len(jpeg) * fraction)]
        cases[f"png-truncated-{fraction}"] = png[: int(len(png) * fraction)]
    rng = np.random.default_rng(7)
    for name, magic in (
        ("jpeg", b"\xff\xd8\xff\xe0"),
        ("png", b"\x89PNG\r\n\x1a\n"),
        ("gif", b"GIF89a"),
        ("bmp", b"BM"),
        ("tiff", b"II*\x00"),
        ("webp", b"RIFF\x00\x10\x00\x00WEBPVP8 "),
    ):
        cases[f"random-with-{name}-magic"] = magic + rng.bytes(2048)
    return cases


CASES = _cases()
# What the documented rules demand (docs/api.md "Training images"): bombs are refused from the header,
# truncated files and non-images are refused; whole, ordinary images are accepted.
MUST_REFUSE = {n for n in CASES if "bomb" in n or "65500" in n or "truncated" in n or "random" in n} | {
    "zero-byte",
    "one-byte",
    "jpeg-magic-only",
}
MUST_ACCEPT = {"1x1-png", "1x1-jpeg", "16-bit-png", "cmyk-tiff", "animated-gif", "exif-orientation-9"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, TrainableTask]]:
    with trained_server(tmp_path_factory.mktemp("malformed") / "data") as trained_task:
        yield trained_task


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _check_upload(api: Api, name: str, data: bytes) -> int:
    soak_record("fuzz", malformed_images_tried=1, requests=1)
    response = api.call("POST", "training-image/", json={"base64": _b64(data)})
    code = response.status_code
    assert code < 500, f"{name}: upload answered {code} {response.text[:300]}"
    body = response.json()
    if code == 201:
        assert body["img_width"] >= 1 and body["img_height"] >= 1, f"{name}: {body}"
        assert body["img_width"] * body["img_height"] <= 50_000_000, f"{name}: a bomb was accepted: {body}"
        api.ok("DELETE", f"training-image/{body['id']}/", status=204)
    else:
        assert 400 <= code < 500 and isinstance(body.get("detail"), str) and body["detail"], f"{name}: {body}"
    return code


def _check_classify(trainable: TrainableTask, named: dict[str, bytes]) -> None:
    names = list(named)
    for start in range(0, len(names), 9):
        batch = names[start : start + 9]
        records = [{"_base64": _b64(named[name]), "_id": name} for name in batch]
        records.append({"_base64": _b64(photo("chelsea", 100)), "_id": "control"})
        soak_record("fuzz", malformed_images_tried=len(batch), requests=1)
        response = trainable.api.call("POST", "classify/", json={"task_id": trainable.task["id"], "records": records})
        assert response.status_code == 200, f"{batch}: classify answered {response.status_code} {response.text[:300]}"
        answered = response.json()["records"]
        assert [record["_id"] for record in answered] == [*batch, "control"]
        for record in answered:
            status = record["_status"]["code"]
            assert status == 200 or 400 <= status < 500, f"{record['_id']}: {record['_status']}"
            if status == 200:
                assert record["best_label"]["name"] in ("cat", "coffee"), record
        assert answered[-1]["_status"]["code"] == 200, "the good record must still be classified"


@pytest.mark.parametrize("name", sorted(CASES))
def test_upload_accepts_cleanly_or_refuses_with_4xx(local_server: RunningServer, name: str) -> None:
    api = Api(local_server.url, local_server.token)
    code = _check_upload(api, name, CASES[name])
    if name in MUST_REFUSE:
        assert code in (400, 413, 415, 422), f"{name} must be refused, got {code}"
    if name in MUST_ACCEPT:
        assert code == 201, f"{name} is a whole image and must be accepted, got {code}"
    assert api.call("GET", "task/").status_code == 200, "the server stopped serving"


@pytest.mark.slow
def test_classify_gives_each_bad_record_a_4xx_status(trained: tuple[RunningServer, TrainableTask]) -> None:
    _, trainable = trained
    _check_classify(trainable, CASES)


def _bit_flipped(original: bytes) -> Callable[[list[int]], bytes]:
    def flip(positions: list[int]) -> bytes:
        data = bytearray(original)
        for position in positions:
            data[position // 8 % len(data)] ^= 1 << (position % 8)
        return bytes(data)

    return flip


VALID_JPEG = photo("coffee", 96)
FLIP = _bit_flipped(VALID_JPEG)
POSITIONS = st.lists(st.integers(min_value=0, max_value=len(VALID_JPEG) * 8 - 1), min_size=1, max_size=16)
FUZZ_SETTINGS = settings(
    max_examples=MUTATIONS,
    deadline=None,
    database=None,
    derandomize=not SOAK,
    suppress_health_check=list(HealthCheck),
)


def test_bit_flipped_jpegs_into_upload(local_server: RunningServer) -> None:
    api = Api(local_server.url, local_server.token)

    @FUZZ_SETTINGS
    @given(positions=POSITIONS)
    def run(positions: list[int]) -> None:
        _check_upload(api, f"flips at {positions}", FLIP(positions))

    run()
    assert api.call("GET", "task/").status_code == 200


@pytest.mark.slow
def test_bit_flipped_jpegs_into_classify(trained: tuple[RunningServer, TrainableTask]) -> None:
    _, trainable = trained

    @FUZZ_SETTINGS
    @given(positions=POSITIONS)
    def run(positions: list[int]) -> None:
        _check_classify(trainable, {f"flips at {positions}": FLIP(positions)})

    run()
