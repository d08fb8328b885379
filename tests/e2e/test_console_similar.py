"""Similar images in the console: under each Classify result, and "Find similar" on a training
image in the Data tab, where a look-alike with another label stands out (a mislabelled image).

The task is set up and trained through the API (the story test covers doing it in the console)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.api.http import Api
from tests.e2e.conftest import Console
from tests.flow.conftest import make_trainable_task
from tests.photos import distinct_photos, photo

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRAINING_SECONDS = 300


def _wait_trained(api: Api, model_id: str) -> None:
    """The console's worker trains in the background; the Classify tab needs a trained version."""
    deadline = time.monotonic() + TRAINING_SECONDS
    while (state := api.get(f"model/{model_id}/")["train_status"]) != "TRAINED":
        assert state in ("WAITING", "IN_TRAINING") and time.monotonic() < deadline, state
        time.sleep(0.5)


def test_similar_training_images_under_classify_results_and_in_the_data_tab(console: Console, tmp_path: Path) -> None:
    api = Api(console.url, console.server.token)
    trainable = make_trainable_task(api)  # "Cats and coffee": 20 photos of each
    task, (cat, _) = trainable.task, trainable.labels
    # A photo of coffee labelled "cat" by mistake: its nearest images are coffee.
    mislabelled = api.upload(distinct_photos(21, "coffee", side=64)[20], labels=[cat["id"]])
    model = api.post(f"task/{task['id']}/train/", status=201)
    _wait_trained(api, model["id"])

    page = console.page
    console.sign_in()
    page.goto(f"{console.url}#/tasks/{task['id']}/classify")
    choose = page.get_by_label("Choose images to classify")
    new_cat, new_coffee = tmp_path / "new-cat.jpg", tmp_path / "new-coffee.jpg"
    new_cat.write_bytes(photo("chelsea", 300))
    new_coffee.write_bytes(photo("coffee", 300))
    searches: list[str] = []
    page.on("request", lambda request: searches.append(request.url) if "/similar" in request.url else None)
    choose.set_input_files([new_cat, new_coffee])

    for name, label in (("new-cat.jpg", "cat"), ("new-coffee.jpg", "coffee")):
        result = page.locator(".result", has_text=name)
        expect(result.locator(".best-label")).to_have_text(label, timeout=60_000)
        similar = result.locator("[data-role=similar]")
        expect(similar).to_contain_text("Similar training images")
        items = similar.locator(".similar-item")
        expect(items).to_have_count(6)
        for index in range(5):
            # The coffee photo labelled "cat" is a near neighbour of new coffee photos: it shows as "cat".
            if items.nth(index).get_attribute("data-image-id") != mislabelled["id"]:
                expect(items.nth(index).locator(".similar-labels")).to_have_text(label)
            thumbnail = items.nth(index).locator("img")
            expect(thumbnail).to_have_js_property("complete", True)
            assert thumbnail.evaluate("img => img.naturalWidth") > 0
        expect(items.first.locator(".similarity")).to_have_text(re.compile(r"^\d+\.\d%$"))
    assert len(searches) == 1, searches  # one similar/ call for the batch, as for classify/
    console.screenshot("classify-similar")

    # --- the Data tab: "Find similar" on the mislabelled image --------------------------------
    page.goto(f"{console.url}#/tasks/{task['id']}/labels/{cat['id']}")
    card = page.locator(f".image-card[data-image-id='{mislabelled['id']}']")
    card.get_by_role("button", name="Find similar").click()
    dialog = page.get_by_role("dialog", name="Similar images")
    found = dialog.locator(".similar-item")
    expect(found).to_have_count(12)
    expect(found.first).to_have_attribute("data-image-id", mislabelled["id"])  # itself first
    expect(found.first.locator(".similarity")).to_have_text(re.compile(r"^(99\.\d|100\.0)%$"))
    # Its look-alikes are coffee: marked as having another label than the image's own.
    differs = dialog.locator(".similar-item.differs")
    expect(differs.first).to_contain_text("coffee")
    expect(differs.first).to_contain_text("other label")
    assert differs.count() >= 5
    console.screenshot("data-find-similar", full_page=False)
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)
