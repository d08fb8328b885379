"""The Review tab, by keyboard only: Enter confirms the model's suggestion, a digit picks another
label (a tag task: toggles tags), X skips; each decision labels the image through the API and the
Train tab then says how many reviewed images the next version gains.

The queue is filled by classify's store_images path with constructed probabilities (so which
image comes first is known), through the running server's own ports."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from kestrel.domain.review import category_margin, tag_closeness
from kestrel.store.accounts import ensure_owner
from kestrel.store.keys import Space
from kestrel.store.tasks import get_task
from kestrel.usecases.classify import Prediction, store_classified
from tests.api.http import Api
from tests.conftest import OWNER_A
from tests.e2e.conftest import Console
from tests.photos import distinct_photos, photo

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _store(console: Console, task_id: str, data: bytes, scores: list[tuple[dict[str, Any], float]], tags: bool) -> str:
    ports = console.server.ports
    space = Space.default_of(ensure_owner(ports.items, OWNER_A).id)
    ranked = [
        {"id": label["id"], "name": label["name"], "prob": prob} for label, prob in sorted(scores, key=lambda s: -s[1])
    ]
    probs = [prob for _, prob in scores]
    if tags:
        best = [label for label in ranked if label["prob"] >= 0.5]
        prediction = Prediction(1, "model-1", ranked, best, tag_closeness(probs, [0.5] * len(probs)))
    else:
        prediction = Prediction(1, "model-1", ranked, None, category_margin(probs))
    return store_classified(ports, space, get_task(ports.items, space, task_id), data, prediction)


def _labels_of(api: Api, image_id: str) -> list[str]:
    return [label["name"] for label in api.get(f"training-image/{image_id}/")["labels"]]


def test_review_a_category_queue_with_the_keyboard(console: Console) -> None:
    api = Api(console.url, console.server.token)
    task = api.create_task("Photos")
    cat, coffee, rocket = (api.create_label(name) for name in ("cat", "coffee", "rocket"))
    for label in (cat, coffee, rocket):
        api.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
    # The model hesitated most on the rocket (margin 0.05), then on the cat it took for coffee (0.2),
    # least on the coffee (0.6).
    sure = _store(console, task["id"], photo("coffee", 320), [(cat, 0.1), (coffee, 0.75), (rocket, 0.15)], False)
    unsure = _store(console, task["id"], photo("rocket", 320), [(cat, 0.05), (coffee, 0.45), (rocket, 0.5)], False)
    middle = _store(console, task["id"], photo("chelsea", 320), [(cat, 0.3), (coffee, 0.5), (rocket, 0.2)], False)
    plain = api.upload(distinct_photos(1, "astronaut", side=160)[0])["id"]  # never classified: last

    page = console.page
    console.sign_in()
    page.goto(f"{console.url}#/tasks/{task['id']}/review")
    card = page.get_by_role("article", name="The image to review")
    expect(card.locator("img")).to_have_attribute("alt", f"Image {unsure} to review")
    expect(page.locator(".review-summary")).to_have_text(re.compile(r"^4 images to review"))
    suggested = page.locator(".review-option[aria-pressed=true]")
    expect(suggested).to_have_count(1)
    expect(suggested).to_contain_text("rocket")
    expect(card).to_contain_text("margin 0.050")
    expect(page.locator(".review-next img")).to_have_count(3)
    expect(card.locator("img")).to_have_js_property("complete", True)
    console.screenshot("review")

    page.keyboard.press("Enter")  # the suggestion: rocket
    expect(card.locator("img")).to_have_attribute("alt", f"Image {middle} to review")
    assert _labels_of(api, unsure) == ["rocket"]
    expect(page.locator(".review-option[aria-pressed=true]")).to_contain_text("coffee")  # the model's mistake
    page.keyboard.press("1")  # corrected: it is a cat
    expect(card.locator("img")).to_have_attribute("alt", f"Image {sure} to review")
    assert _labels_of(api, middle) == ["cat"]
    page.keyboard.press("x")
    expect(card.locator("img")).to_have_attribute("alt", f"Image {plain} to review")
    assert _labels_of(api, sure) == []
    expect(card).to_contain_text("No prediction")
    expect(page.locator(".review-option[aria-pressed=true]")).to_have_count(0)
    page.keyboard.press("Enter")  # nothing suggested: Enter asks for a label instead
    expect(page.get_by_role("alert").or_(page.locator(".notice.error"))).to_contain_text("Pick a label")
    page.keyboard.press("1")
    expect(page.get_by_text("Nothing to review.")).to_be_visible()
    assert _labels_of(api, plain) == ["cat"]
    expect(page.locator(".review-summary")).to_have_text("0 images to review · 3 images reviewed")

    page.get_by_role("link", name="Train", exact=True).click()
    expect(page.locator("[data-role=reviewed-gain]")).to_have_text(
        re.compile(r"^The next version gains 3 reviewed images\.")
    )


def test_review_tags_toggles_and_confirms(console: Console) -> None:
    api = Api(console.url, console.server.token)
    task = api.create_task("Tags", "multi_label")
    sky, sea = api.create_label("sky", "tag"), api.create_label("sea", "tag")
    for label in (sky, sea):
        api.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
    first = _store(console, task["id"], photo("astronaut", 200), [(sky, 0.55), (sea, 0.1)], True)
    second = _store(console, task["id"], photo("coffee", 200), [(sky, 0.2), (sea, 0.3)], True)

    page = console.page
    console.sign_in()
    page.goto(f"{console.url}#/tasks/{task['id']}/review")
    card = page.get_by_role("article", name="The image to review")
    expect(card.locator("img")).to_have_attribute("alt", f"Image {first} to review")
    expect(page.locator(".review-option[aria-pressed=true]")).to_have_text(re.compile("sky"))
    page.keyboard.press("2")  # add sea to the suggested sky
    expect(page.locator(".review-option[aria-pressed=true]")).to_have_count(2)
    page.keyboard.press("Enter")
    expect(card.locator("img")).to_have_attribute("alt", f"Image {second} to review")
    assert sorted(_labels_of(api, first)) == ["sea", "sky"]
    page.keyboard.press("0")  # none of the tags
    page.keyboard.press("Enter")
    expect(page.get_by_text("Nothing to review.")).to_be_visible()
    negative = next(label for label in api.get(f"task/{task['id']}/")["labels"] if label["negative_for_task"])
    assert _labels_of(api, second) == [negative["name"]]
