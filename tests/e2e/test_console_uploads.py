"""Large uploads in the console: over the direct-upload size they go through an upload URL
(ask, PUT the bytes, register), as on AWS where a request carries at most 6 MB; over the image
limit they are refused with the API's reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.api.http import Api
from tests.e2e.conftest import Console
from tests.photos import encode, sample

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def big_png(side: int) -> bytes:
    """A real photo as an uncompressed PNG: 3 bytes per pixel."""
    return encode(sample("astronaut").resize((side, side)), "PNG", compress_level=0)


def test_large_images_go_through_an_upload_url_and_too_large_ones_are_named(console: Console, tmp_path: Path) -> None:
    api = Api(console.url, console.server.token)
    task = api.create_task("Big pictures")
    label = api.create_label("astronaut")
    api.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
    large = tmp_path / "large.png"
    large.write_bytes(big_png(1300))  # about 5 MB: over the direct upload, under the image limit
    huge = tmp_path / "huge.png"
    huge.write_bytes(big_png(1950))  # about 11 MB: over the 10 MB image limit
    assert 4.5e6 < large.stat().st_size < 6e6 and huge.stat().st_size > 10.5 * 1024 * 1024

    page = console.page
    console.sign_in()
    page.goto(f"{console.url}#/tasks/{task['id']}")
    page.locator("input[data-role=file-input]").set_input_files([large, huge])
    expect(page.locator(".upload-summary")).to_have_text("1 of 2 files uploaded · 1 refused", timeout=60_000)
    refused = page.locator(".upload-item[data-state=failed]")
    expect(refused).to_contain_text("huge.png")
    expect(refused).to_contain_text("over the limit of 10,485,760 bytes")

    (image,) = api.get(f"training-image/?labels={label['id']}")["results"]
    assert (image["img_width"], image["img_height"]) == (1300, 1300)
    expect(page.locator("tr[data-label-id] td.count")).to_have_text("1")
