"""The whole story in the console, in headless Chromium, on a real local gateway and worker:
sign in, create a task and two labels, upload real photos (file input, drop zone, folder),
train and watch it finish without reloading, read the evaluation, deploy, classify a new photo.
Each screen is saved to docs/screenshots/."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LAPTOP, PHONE, Console
from tests.photos import distinct_photos, photo

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRAINING_TIMEOUT_MS = 300_000
UPLOAD_TIMEOUT_MS = 90_000

# A drop as the browser makes it: a DataTransfer of File objects, dispatched on the drop zone.
DROP_FILES_JS = """
([selector, files]) => {
  const transfer = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], f.name, { type: f.type }));
  }
  const zone = document.querySelector(selector);
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }
}
"""


def write_photos(folder: Path, prefix: str, photos: list[bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, data in enumerate(photos):
        path = folder / f"{prefix}-{index:02d}.jpg"
        path.write_bytes(data)
        paths.append(path)
    return paths


def drop_files(page: Page, selector: str, files: list[tuple[str, str, bytes]]) -> None:
    payload = [{"name": name, "type": kind, "data": base64.b64encode(data).decode()} for name, kind, data in files]
    page.evaluate(DROP_FILES_JS, [selector, payload])


def label_row(page: Page, name: str) -> Any:
    return page.locator("tr[data-label-id]").filter(has=page.get_by_role("rowheader", name=name, exact=True))


def tab(page: Page, name: str) -> None:
    page.locator("nav.tabs").get_by_role("link", name=name, exact=True).click()


def wait_trained(page: Page, version: int) -> None:
    live = page.locator(".live-version")
    expect(live).to_contain_text(f"Version {version}")
    expect(live.locator(".stepper li.current.trained")).to_be_visible(timeout=TRAINING_TIMEOUT_MS)


def test_the_whole_story_in_the_console(console: Console, tmp_path: Path) -> None:
    page = console.page

    # --- sign in: the token is asked once and kept --------------------------------------
    console.sign_in()
    expect(page.get_by_role("heading", level=1, name="Tasks")).to_be_visible()
    assert page.evaluate("localStorage.getItem('kestrel.token')") == console.server.token

    # --- create a task ------------------------------------------------------------------
    page.get_by_label("Name", exact=True).fill("Cats and coffee")
    page.get_by_label("Type").select_option("multi_class")
    page.get_by_role("button", name="Create task").click()
    expect(page).to_have_url(re.compile(r"#/tasks/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Cats and coffee")
    task_id = page.url.rsplit("/", 1)[1]

    # --- two labels ---------------------------------------------------------------------
    for name in ("cat", "coffee"):
        page.get_by_label("New label").fill(name)
        page.get_by_role("button", name="Create and attach").click()
        expect(label_row(page, name)).to_be_visible()
        expect(label_row(page, name).locator("td.count")).to_have_text("0")

    # The Train tab says exactly what is missing, and its button waits.
    tab(page, "Train")
    missing = page.locator("ul.missing")
    expect(missing).to_contain_text("Label “cat” has 0 images: 20 more needed")
    expect(missing).to_contain_text("Label “coffee” has 0 images: 20 more needed")
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    tab(page, "Data")

    # --- uploads: 22 cats through the file input ------------------------------------------
    cats = distinct_photos(26, "chelsea", side=96)
    cat_files = write_photos(tmp_path / "cats", "cat", cats[:22])
    page.get_by_label("Put the images in").select_option(label="Label “cat”")
    page.locator("input[data-role=file-input]").set_input_files(cat_files)

    # ... 4 more cats, a duplicate and a file that is not an image, dropped on the drop zone
    drop_files(
        page,
        "[data-role=dropzone]",
        [
            *((f"cat-{n}.jpg", "image/jpeg", cats[n]) for n in range(22, 26)),
            ("again.jpg", "image/jpeg", cats[0]),
            ("notes.txt", "text/plain", b"shopping list: milk, coffee"),
        ],
    )
    # ... and a folder with one sub-folder per label, its files labelled by folder name
    coffee_dir = tmp_path / "photos" / "coffee"
    write_photos(coffee_dir, "coffee", distinct_photos(22, "coffee", side=96))
    page.get_by_label("Put the images in").select_option(label="Labels named after their folders")
    page.locator("input[webkitdirectory]").set_input_files(coffee_dir)

    expect(page.locator(".upload-summary")).to_have_text(
        "48 of 50 files uploaded · 1 duplicate · 1 refused", timeout=UPLOAD_TIMEOUT_MS
    )
    duplicate = page.locator(".upload-item[data-state=duplicate]")
    expect(duplicate).to_contain_text("again.jpg")
    expect(duplicate).to_contain_text(re.compile(r"Training image ID: [0-9a-f-]{36} already exists"))
    refused = page.locator(".upload-item[data-state=failed]")
    expect(refused).to_contain_text("notes.txt")
    expect(refused).to_contain_text("not a usable image")  # the API's own reason
    expect(page.locator(".upload-item[data-state=done]")).to_have_count(48)
    # The counts follow the uploads without a reload.
    expect(label_row(page, "cat").locator("td.count")).to_have_text("26", timeout=UPLOAD_TIMEOUT_MS)
    expect(label_row(page, "coffee").locator("td.count")).to_have_text("22", timeout=UPLOAD_TIMEOUT_MS)
    expect(label_row(page, "cat")).to_contain_text("ready")
    console.screenshot("upload")
    page.get_by_role("button", name="Clear finished").click()
    expect(page.locator(".upload-item")).to_have_count(0)
    console.screenshot("task")

    # --- the images of a label: pages, relabel, delete -------------------------------------
    label_row(page, "cat").get_by_role("link", name="Images").click()
    expect(page.get_by_role("heading", level=2, name=re.compile("Images of “cat”"))).to_be_visible()
    cards = page.locator(".image-card")
    expect(cards).to_have_count(24)
    expect(page.locator(".pager-status")).to_have_text("Page 1 of 2 · 26 in all")
    first = cards.first
    first.get_by_role("button", name="Labels…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("coffee").check()
    dialog.get_by_role("button", name="Save labels").click()
    expect(cards.first.locator(".chip", has_text="coffee")).to_be_visible()
    cards.first.get_by_role("button", name="Labels…").click()
    dialog.get_by_label("coffee").uncheck()
    dialog.get_by_role("button", name="Save labels").click()
    expect(cards.first.locator(".chip", has_text="coffee")).to_have_count(0)
    # Escape closes a dialog without doing anything.
    cards.first.get_by_role("button", name="Delete").click()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(cards).to_have_count(24)
    console.screenshot("label-images", full_page=False)  # the photos make a full page heavy
    page.get_by_role("button", name="Next →").click()
    expect(page.locator(".pager-status")).to_have_text("Page 2 of 2 · 26 in all")
    expect(cards).to_have_count(2)
    cards.last.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete image").click()
    expect(page.locator(".pager-status")).to_have_text("Page 2 of 2 · 25 in all")
    expect(cards).to_have_count(1)
    page.get_by_role("button", name="← Previous").click()
    expect(cards).to_have_count(24)

    # --- train, and watch it finish without reloading ----------------------------------------
    tab(page, "Train")
    expect(page.locator(".notice.ok")).to_contain_text("Ready: 2 labels")
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.locator(".live-version")).to_contain_text(re.compile("WAITING|IN_TRAINING|TRAINED"))
    wait_trained(page, 1)
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    expect(page.locator(".live-version .big-number")).to_contain_text("%")
    expect(page.locator(".task-meta")).to_contain_text("version 1 in production")
    console.screenshot("training")

    # --- the evaluation ---------------------------------------------------------------------
    page.get_by_role("link", name="See the evaluation").click()
    stats = page.locator("dl.stats")
    expect(stats).to_contain_text("Accuracy")
    accuracy = float(stats.locator(".stat", has_text="Accuracy").locator("dd").inner_text().split("%")[0])
    assert accuracy >= 75, f"accuracy {accuracy}% on cat vs coffee"
    confusion = page.locator("table.confusion")
    expect(confusion.locator("tbody td")).to_have_count(4)
    expect(confusion.locator("tbody th")).to_have_text(["is cat", "is coffee"])
    expect(confusion.locator("td.diag").first).to_have_css("background-color", re.compile(r"rgb"))
    expect(page.locator("table.numbers tbody tr")).to_have_count(2)
    expect(page.get_by_role("heading", name=re.compile(r"Misclassified test images \(\d+\)"))).to_be_visible()
    console.screenshot("evaluation")
    page.set_viewport_size(PHONE)
    console.screenshot("evaluation-phone")
    page.set_viewport_size(LAPTOP)

    # --- a second version, then deploy it by hand ---------------------------------------------
    tab(page, "Train")
    page.get_by_role("button", name="Train", exact=True).click()
    wait_trained(page, 2)
    tab(page, "Models")
    version_2 = page.locator("tr[data-version='2']")
    expect(page.locator("tr[data-version='1']")).to_contain_text("in production")
    expect(version_2).to_contain_text("TRAINED")
    version_2.get_by_role("button", name="Deploy version 2").click()
    expect(version_2).to_contain_text("in production")
    expect(page.locator(".task-meta")).to_contain_text("version 2 in production")
    expect(page.locator("tr[data-version='1']").get_by_role("button", name="Deploy version 1")).to_be_visible()
    console.screenshot("models")

    # --- classify a new photo ---------------------------------------------------------------
    tab(page, "Classify")
    new_photo = tmp_path / "new-cat.jpg"
    new_photo.write_bytes(photo("chelsea", 300))
    page.get_by_label("Choose images to classify").set_input_files(new_photo)
    result = page.locator(".result").first
    expect(result.locator(".best-label")).to_have_text("cat", timeout=60_000)
    expect(result.locator(".bars li")).to_have_count(2)
    expect(result).to_contain_text("Version 2")
    # A record the API cannot read gets its own error, shown on its own card.
    page.get_by_label("Image URL", exact=True).fill("http://127.0.0.1:9/not-there.jpg")
    page.get_by_role("button", name="Classify URL").click()
    bad = page.locator(".result").first
    expect(bad.locator(".notice.error")).to_be_visible(timeout=30_000)
    expect(bad.locator(".notice.error")).to_contain_text("HTTP 4")
    expect(page.locator(".result")).to_have_count(2)
    console.screenshot("classify")

    # --- the token screen and snippets for this task -----------------------------------------
    tab(page, "API")
    snippets = page.locator("pre")
    expect(snippets.first).to_contain_text(f"$KESTREL/task/{task_id}/")
    expect(snippets.last).to_contain_text('RecognitionClient("••••')
    expect(snippets.last).to_contain_text(f'endpoint="{console.url}"')
    expect(page.locator("code.token")).not_to_contain_text(console.server.token)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("code.token")).to_have_text(console.server.token)
    page.get_by_role("button", name="Hide").click()
    console.screenshot("token")

    # --- tasks: rename and delete ------------------------------------------------------------
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    page.get_by_label("Name", exact=True).fill("Scratch")
    page.get_by_label("Type").select_option("multi_label")
    page.get_by_role("button", name="Create task").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Scratch")
    expect(page.locator("tr[data-label-id]")).to_contain_text("negative")  # multi_label's automatic label
    expect(page.get_by_role("button", name=re.compile("Detach"))).to_have_count(0)
    page.get_by_role("link", name="Tasks", exact=True).first.click()
    row = page.locator("tbody tr", has_text="Scratch")
    row.get_by_role("button", name="Rename").click()
    page.get_by_role("dialog").get_by_label("Name").fill("Scratch renamed")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(page.locator("tbody tr", has_text="Scratch renamed")).to_be_visible()
    page.locator("tbody tr", has_text="Scratch renamed").get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete task").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("version 2")
    console.screenshot("tasks")
    page.set_viewport_size(PHONE)
    console.screenshot("tasks-phone")

    # --- sign out forgets the token -----------------------------------------------------------
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("localStorage.getItem('kestrel.token')") is None
