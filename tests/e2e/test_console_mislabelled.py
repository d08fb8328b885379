"""The evaluation's "Possibly mislabelled training images": a task trained with five photos under
the other label lists them with their thumbnails; one click relabels an image through the label
API (the card says so, and says so again after a reload), "Keep" leaves the label alone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.api.http import Api
from tests.e2e.conftest import Console
from tests.flow.test_mislabelled import swapped_task

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRAINING_TIMEOUT_MS = 300_000


def test_possibly_mislabelled_images_are_relabelled_or_kept_in_one_click(console: Console) -> None:
    api = Api(console.url, console.server.token)
    task = swapped_task(api)
    model = api.post(f"task/{task.task['id']}/train/", status=201)
    cat_photos_as_coffee = [image for image, really in task.swapped.items() if really == "cat"]
    coffee_photos_as_cat = [image for image, really in task.swapped.items() if really == "coffee"]

    page = console.page
    console.sign_in()
    page.goto(f"{console.url}#/tasks/{task.task['id']}/models/{model['id']}")  # followed live until trained
    heading = page.get_by_role("heading", name=re.compile(r"Possibly mislabelled training images \(\d+\)"))
    expect(heading).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    cards = page.locator(".image-card.mislabelled")
    for image_id in task.swapped:  # every swapped photo is listed, with its thumbnail
        card = page.locator(f'.image-card.mislabelled[data-image-id="{image_id}"]')
        expect(card).to_be_visible()
        thumbnail = card.locator("img")
        expect(thumbnail).to_have_js_property("complete", True)
        assert thumbnail.evaluate("img => img.naturalWidth") > 0
    assert cards.count() <= len(task.swapped) + 1  # at most one false alarm

    relabelled = page.locator(f'.image-card.mislabelled[data-image-id="{coffee_photos_as_cat[0]}"]')
    expect(relabelled).to_contain_text("Labelled: cat")
    expect(relabelled).to_contain_text("Model says: coffee")
    relabelled.get_by_role("button", name="Relabel to coffee").click()
    expect(relabelled.locator(".mislabel-status")).to_have_text("Relabelled to coffee.")
    expect(relabelled.get_by_role("button")).to_have_count(0)
    image = api.get(f"training-image/{coffee_photos_as_cat[0]}")
    assert [label["name"] for label in image["labels"]] == ["coffee"]

    kept = page.locator(f'.image-card.mislabelled[data-image-id="{cat_photos_as_coffee[0]}"]')
    kept.get_by_role("button", name="Keep").click()
    expect(kept.locator(".mislabel-status")).to_have_text("Kept as coffee.")
    image = api.get(f"training-image/{cat_photos_as_coffee[0]}")
    assert [label["name"] for label in image["labels"]] == ["coffee"]  # untouched

    page.evaluate("document.getElementById('mislabelled-heading').scrollIntoView({block: 'start'})")
    console.screenshot("evaluation-mislabelled", full_page=False)

    # After a reload the relabelled image is shown as such (its labels now are the suggestion).
    page.reload()
    again = page.locator(f'.image-card.mislabelled[data-image-id="{coffee_photos_as_cat[0]}"]')
    expect(again.locator(".mislabel-status")).to_have_text("Relabelled to coffee.")
    other = page.locator(f'.image-card.mislabelled[data-image-id="{coffee_photos_as_cat[1]}"]')
    expect(other.get_by_role("button", name="Relabel to coffee")).to_be_visible()
