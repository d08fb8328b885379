"""The evaluation screen on models with mistakes (multi_class) and with tags (multi_label).

The tasks are set up through the API (the story test covers doing it in the console); the
console follows the training live and then shows the model card."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.api.http import Api
from tests.e2e.conftest import Console
from tests.flow.conftest import make_trainable_task
from tests.photos import distinct_photos, photo

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRAINING_TIMEOUT_MS = 300_000
#: "92 % (85 to 96 %)" written with an en dash: an accuracy and its 95 % interval, as the console shows them.
WITH_INTERVAL = re.compile("\\d+ % \\(\\d+\u2013\\d+ %\\)")


def test_misclassified_test_images_are_shown_with_what_they_were_taken_for(console: Console) -> None:
    api = Api(console.url, console.server.token)
    trainable = make_trainable_task(api, name="With mistakes")
    task, (cat, _) = trainable.task, trainable.labels
    # Photos of coffee labelled "cat" and kept for evaluation: the model will call them coffee.
    wrong = [api.upload(data, labels=[cat["id"]], test_image=True)["id"] for data in distinct_photos(23, "coffee")[20:]]
    model = api.post(f"task/{task['id']}/train/", status=201)

    page = console.page
    console.sign_in()
    page.goto(f"{console.url}#/tasks/{task['id']}/models/{model['id']}")  # followed live until trained
    mistakes = page.locator(".image-card.mistake")
    expect(mistakes.first).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    expect(page.get_by_role("heading", name=re.compile(r"Misclassified test images \(\d+\)"))).to_be_visible()
    shown = page.locator(".image-card.mistake", has_text="Is: cat").filter(has_text="Taken for: coffee")
    expect(shown).to_have_count(len(wrong))
    # Each one shows its thumbnail, fetched through training-image/{id}.
    for index in range(len(wrong)):
        thumbnail = shown.nth(index).locator("img")
        expect(thumbnail).to_have_attribute("src", re.compile(r"/blobs/"))
        expect(thumbnail).to_have_js_property("complete", True)
        assert thumbnail.evaluate("img => img.naturalWidth") > 0
    # The confusion matrix counts them off the diagonal, in red.
    off = page.locator("table.confusion td.off").first
    expect(off).to_have_text(str(len(wrong)))
    colour = off.evaluate("td => getComputedStyle(td).backgroundColor")
    red, green, _ = (float(c) for c in re.findall(r"[\d.]+", colour)[:3])
    assert red > green, f"a mistake cell should be red, got {colour}"
    # The accuracy with its 95 % interval, what the brackets mean, and how it was measured.
    expect(page.locator(".stat", has_text="Accuracy")).to_contain_text(WITH_INTERVAL)
    expect(page.locator(".interval-explained")).to_contain_text("95 % confidence")
    expect(page.locator(".evaluation-sentence")).to_have_text(
        re.compile(
            "^Accuracy measured on 9 test images by a model trained on the other 34; "
            "the deployed model was then trained on all 43"
        )
    )
    # 9 test images: small, so the accuracy is also cross-validated, with recall per label from the folds.
    expect(page.locator(".stat", has_text="Cross-validated")).to_contain_text(WITH_INTERVAL)
    expect(page.get_by_role("columnheader", name="Recall (cross-validated)")).to_be_visible()
    console.screenshot("evaluation-mistakes")


def test_a_multi_label_card_and_its_tags(console: Console, tmp_path: Path) -> None:
    api = Api(console.url, console.server.token)
    task = api.create_task("Tags", "multi_label")
    negative = next(label for label in api.get(f"task/{task['id']}")["labels"] if label["negative_for_task"])
    for name, sample in (("cat", "chelsea"), ("coffee", "coffee")):
        label = api.create_label(name, "tag")
        api.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
        for data in distinct_photos(20, sample, side=64):
            api.upload(data, labels=[label["id"]])
    for data in distinct_photos(8, "rocket", side=64):
        api.upload(data, labels=[negative["id"]])

    page = console.page
    console.sign_in()
    page.goto(f"{console.url}#/tasks/{task['id']}/train")
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.locator(".stepper li.current.trained")).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    page.get_by_role("link", name="See the evaluation").click()
    expect(page.locator(".stat", has_text="Micro F1")).to_be_visible()
    expect(page.get_by_role("columnheader", name="Threshold")).to_be_visible()
    expect(page.locator("table.numbers tbody tr")).to_have_count(2)  # the negative label is no output
    expect(page.locator("table.confusion")).to_have_count(0)

    page.locator("nav.tabs").get_by_role("link", name="Classify").click()
    new_photo = tmp_path / "cat.jpg"
    new_photo.write_bytes(photo("chelsea", 200))
    page.get_by_label("Choose images to classify").set_input_files(new_photo)
    tags = page.locator(".result .best")
    expect(tags).to_contain_text("Tags:", timeout=60_000)
    expect(tags.locator(".chip")).to_have_text(["cat"])


def test_a_truncated_card_is_read_whole_and_mails_not_sent_are_shown(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record keeps the first 100 mistakes; the console reads the rest from model/{id}/card/.
    A mailer that always fails leaves the version Trained, and the page says the mails were not sent."""
    import json
    import time
    from types import SimpleNamespace

    from kestrel.domain.card_summary import summarise
    from kestrel.flow import mails
    from kestrel.ports.items import Update
    from kestrel.ports.mail import Mail
    from kestrel.store import keys
    from kestrel.store.accounts import authenticate
    from kestrel.store.keys import Space
    from kestrel.store.version_files import CARD_FILE, model_prefix

    def refused(mail: Mail) -> None:
        raise OSError("the SMTP server is gone")

    ports = console.server.ports
    monkeypatch.setattr(ports.mailer, "send", refused)
    monkeypatch.setattr(mails, "time", SimpleNamespace(sleep=lambda _: None))
    api = Api(console.url, console.server.token)
    trainable = make_trainable_task(api, name="Many mistakes")
    model = api.post(f"task/{trainable.task['id']}/train/", status=201)
    deadline = time.monotonic() + TRAINING_TIMEOUT_MS / 1000
    while api.get(f"model/{model['id']}")["train_status"] != "TRAINED":
        assert time.monotonic() < deadline, "the version did not train"
        time.sleep(0.5)
    # A card with 150 mistakes, as a larger test part gives: the file holds them all, the record
    # its summary (what the finisher writes for such a card).
    owner = authenticate(ports.items, f"Token {console.server.token}")
    key = model_prefix(owner, model["id"]) + CARD_FILE
    card = json.loads(ports.blobs.get(key))
    cat, coffee = (label["id"] for label in trainable.labels)
    card["misclassified"] = [
        {"image_id": f"{n:08d}-0000-4000-8000-000000000000", "label": cat, "predicted": coffee, "prob": 0.9}
        for n in range(150)
    ]
    ports.blobs.put(key, json.dumps(card).encode(), "application/json")
    ports.items.update(Update(keys.model_key(Space.default_of(owner), model["id"]), set={"metrics": summarise(card)}))
    assert api.get(f"model/{model['id']}")["metrics"]["truncated"] is True

    page = console.page
    console.sign_in()
    page.goto(f"{console.url}#/tasks/{trainable.task['id']}/models/{model['id']}")

    expect(page.get_by_role("heading", name="Misclassified test images (150)")).to_be_visible()
    expect(page.get_by_text("90 more images not shown.")).to_be_visible()
    notes = page.locator(".mail-status p")
    expect(notes).to_have_count(2)
    expect(notes.first).to_have_text(
        "The “training started” mail was not sent: the mail could not be written or sent (3 attempts); "
        "the training result is unaffected"
    )
    expect(notes.nth(1)).to_contain_text("“training finished” mail was not sent")
