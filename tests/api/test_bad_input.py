"""Bad input gets a 4xx with a useful detail; nothing is stored; the server keeps serving."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from tests.api.http import Api
from tests.photos import photo


@pytest.fixture
def api(api_server: Any) -> Api:
    return Api(api_server.url, api_server.token)


def _snapshot(api: Api) -> tuple[int, int, int]:
    return (api.get("task/")["count"], api.get("label/")["count"], api.get("training-image/")["count"])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _bomb() -> bytes:
    """A tiny PNG whose header claims 100,000 x 100,000 pixels."""
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG")  # compresses to a few kB
    data = bytearray(out.getvalue())
    # Patch the IHDR width/height (bytes 16..24) and its CRC so the header is valid but huge.
    import struct
    import zlib

    data[16:24] = struct.pack(">II", 100_000, 100_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def test_each_bad_request_is_refused_clearly(api: Api, api_server: Any, capfd: pytest.CaptureFixture[str]) -> None:
    task = api.create_task("T")
    tag = api.create_label("a tag", "tag")
    jpeg = photo("chelsea", 200)
    before = _snapshot(api)
    anonymous = Api(api_server.url, None)
    wrong = Api(api_server.url, "0" * 40)
    cases: list[tuple[Api, str, str, dict[str, Any], int, str]] = [
        (anonymous, "GET", "task/", {}, 401, "credentials"),
        (wrong, "GET", "task/", {}, 401, "Invalid token"),
        (
            api,
            "POST",
            "task/",
            {"data": "{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "JSON",
        ),
        (api, "POST", "task/", {"json": {}}, 400, "name"),
        (api, "POST", "task/", {"json": {"name": 42}}, 400, "name"),
        (api, "POST", "task/", {"json": {"name": "x", "type": "regression"}}, 400, "type"),
        (api, "POST", "label/", {"json": {"name": "x", "type": "colour"}}, 400, "type"),
        (api, "GET", "task/3b8f1b8e-0c6e-4b53-9d3e-6c1f7c1f0e9a/", {}, 404, "not found"),
        (api, "POST", f"task/{task['id']}/add-label/", {"json": {}}, 400, "label_id"),
        (api, "POST", f"task/{task['id']}/add-label/", {"json": {"label_id": "nope"}}, 404, "not found"),
        (api, "POST", f"task/{task['id']}/add-label/", {"json": {"label_id": tag["id"]}}, 400, "category"),
        (
            api,
            "POST",
            "training-image/",
            {"json": {"base64": _b64(b"hello, not an image")}},
            400,
            "not an image",
        ),
        (api, "POST", "training-image/", {"json": {"base64": "***"}}, 400, "base64"),
        (
            api,
            "POST",
            "training-image/",
            {"json": {"base64": _b64(jpeg[: len(jpeg) // 2])}},
            400,
            "truncated",
        ),
        (api, "POST", "training-image/", {"json": {"base64": _b64(_bomb())}}, 400, "pixels"),
        (api, "POST", "training-image/", {"json": {}}, 400, "exactly one image"),
        (
            api,
            "POST",
            "training-image/",
            {"json": {"base64": _b64(jpeg), "labels": ["missing"]}},
            404,
            "Label",
        ),
        (
            api,
            "POST",
            "training-image/",
            {"json": {"base64": _b64(jpeg), "meta_data": "text"}},
            400,
            "meta_data",
        ),
        # Found by the soak run of schemathesis: a NUL in upload_id reached a file name (500).
        (api, "POST", "training-image/", {"json": {"upload_id": "\u0000\u00e7q"}}, 400, "upload_id"),
        (api, "POST", "training-image/", {"json": {"upload_id": "../../secret.key"}}, 400, "upload_id"),
        (
            api,
            "POST",
            "training-image/",
            {"json": {"upload_id": "3b8f1b8e-0c6e-4b53-9d3e-6c1f7c1f0e9a"}},
            400,
            "no upload with id",
        ),
        (api, "GET", "task/", {"params": {"page": 99}}, 404, "page 99"),
        (api, "GET", "task/", {"params": {"page": 0}}, 400, "page"),
        (api, "GET", "task/", {"params": {"page": "abc"}}, 400, "page"),
        (api, "GET", "task/", {"params": {"page_size": 100_000}}, 400, "page_size"),
        (api, "GET", "task/", {"params": {"cursor": "garbage"}}, 400, "cursor"),
        (api, "GET", "training-image/", {"params": {"labels": "unknown"}}, 404, "Label"),
        (api, "GET", "no-such-route/", {}, 404, "no route"),
    ]
    for client, method, path, kwargs, status, words in cases:
        response = client.call(method, path, **kwargs)
        assert response.status_code == status, f"{method} {path} {kwargs}: {response.status_code} {response.text}"
        detail = response.json()["detail"]
        assert words.lower() in detail.lower(), f"{method} {path}: {detail!r} should mention {words!r}"
        assert "Traceback" not in response.text
    assert _snapshot(api) == before
    assert api.get(f"label/{tag['id']}")["images_count"] == 0
    assert api.get("task/")["count"] == before[0]  # and the server still answers
    logged = capfd.readouterr()
    assert "Traceback" not in logged.out + logged.err


def test_image_over_the_size_limit(api_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from kestrel.composition import set_ports

    ports = api_server.ports
    small = replace(ports.settings, limits=replace(ports.settings.limits, max_image_bytes=20_000))
    set_ports(replace(ports, settings=small))
    try:
        api = Api(api_server.url, api_server.token)
        big = photo("astronaut", 512, "PNG")
        assert len(big) > 20_000
        response = api.call("POST", "training-image/", json={"base64": _b64(big)})
        assert response.status_code == 413 and "limit" in response.json()["detail"]
        assert api.get("training-image/")["count"] == 0
    finally:
        set_ports(ports)
