"""Failed API calls in the console read as sentences: what was tried, the API's `detail`, the status."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.api.http import Api
from tests.e2e.conftest import Console
from tests.photos import distinct_photos

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_wrong_token_is_refused_with_the_apis_reason(console: Console) -> None:
    page = console.page
    console.sign_in("0" * 40)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Could not sign in.")
    expect(alert).to_contain_text("(HTTP 401)")
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    assert page.evaluate("localStorage.getItem('kestrel.token')") is None

    # A token that stops working later: every screen says so and offers the way back.
    page.evaluate("localStorage.setItem('kestrel.token', 'f'.repeat(40))")
    page.goto(console.url + "#/tasks")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Could not load your tasks.")
    expect(alert).to_contain_text("(HTTP 401)")
    alert.get_by_role("link", name="Sign in with another token").click()
    page.get_by_label("API token").fill(console.server.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1, name="Tasks")).to_be_visible()


def test_bad_input_shows_the_apis_detail(console: Console) -> None:
    page = console.page
    console.sign_in()
    # A task without a name: the API's rule, in the API's words.
    page.get_by_role("button", name="Create task").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Could not create the task.")
    expect(alert).to_contain_text("field 'name': String should have at least 1 character (HTTP 400)")

    page.get_by_label("Name", exact=True).fill("Errors")
    page.get_by_role("button", name="Create task").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Errors")
    # A label with an empty name.
    page.get_by_role("button", name="Create and attach").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Could not create the label.")
    expect(alert).to_contain_text("field 'name'")
    expect(alert).to_contain_text("(HTTP 400)")

    # A task that does not exist (a stale bookmark).
    page.goto(console.url + "#/tasks/00000000-0000-4000-8000-000000000000/models")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Could not load this task.")
    expect(alert).to_contain_text("(HTTP 404)")


def test_an_email_link_leads_to_the_models_after_sign_in(console: Console) -> None:
    api = Api(console.url, console.server.token)
    task = api.create_task("From an email")
    page = console.page
    page.goto(f"{console.url}#/tasks/{task['id']}/models")  # the link in the training emails
    page.get_by_label("API token").fill(console.server.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"#/tasks/{task['id']}/models$"))
    expect(page.get_by_text("No versions yet.")).to_be_visible()


def test_a_refused_training_shows_the_apis_detail_verbatim(console: Console) -> None:
    """The page thinks the task is ready; meanwhile images were deleted elsewhere: the API says why."""
    api = Api(console.url, console.server.token)
    task = api.create_task("Changed elsewhere")
    images: list[str] = []
    for name, sample in (("cat", "chelsea"), ("coffee", "coffee")):
        label = api.create_label(name)
        api.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
        for data in distinct_photos(20, sample, side=48):
            images.append(api.upload(data, labels=[label["id"]])["id"])
    page = console.page
    console.sign_in()
    page.goto(f"{console.url}#/tasks/{task['id']}/train")
    train = page.get_by_role("button", name="Train", exact=True)
    expect(train).to_be_enabled()
    for image_id in images[:2]:
        api.ok("DELETE", f"training-image/{image_id}/", 204)
    train.click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Could not start training.")
    expect(alert).to_contain_text("cannot train yet: label 'cat' has 18 images, 2 short of the 20 needed (HTTP 400)")
