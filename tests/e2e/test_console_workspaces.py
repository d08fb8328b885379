"""The console's workspace switcher: each workspace shows its own tasks, new ones can be made,
and what the console creates lands in the workspace chosen."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import Console

pytestmark = pytest.mark.e2e


def _api(console: Console, method: str, path: str, **kwargs: object) -> dict:  # type: ignore[type-arg]
    response = console.server.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_switcher_shows_each_workspace_s_own_tasks(console: Console) -> None:
    from playwright.sync_api import expect

    page = console.page
    _api(console, "POST", "recognition/v2/task/", json={"name": "Default task"})
    retail = _api(console, "POST", "account/v2/workspace/", json={"name": "Retail"})
    _api(console, "POST", "recognition/v2/task/", json={"name": "Shelf task", "workspace": retail["id"]})

    console.sign_in()
    switcher = page.get_by_label("Workspace")
    expect(switcher).to_be_visible()
    expect(switcher.locator("option:checked")).to_have_text("Default")
    expect(page.get_by_role("link", name="Default task")).to_be_visible()
    expect(page.get_by_role("link", name="Shelf task")).to_have_count(0)

    switcher.select_option(label="Retail")
    expect(page.get_by_role("link", name="Shelf task")).to_be_visible()
    expect(page.get_by_role("link", name="Default task")).to_have_count(0)
    console.screenshot("workspaces", full_page=False)

    # The choice survives a reload (kept in this browser).
    page.reload()
    expect(page.get_by_label("Workspace").locator("option:checked")).to_have_text("Retail")
    expect(page.get_by_role("link", name="Shelf task")).to_be_visible()

    # A new workspace from the switcher starts empty; a task made there belongs to it.
    page.once("dialog", lambda dialog: dialog.accept("Warehouse"))
    page.get_by_label("Workspace").select_option(label="New workspace…")
    expect(page.get_by_label("Workspace").locator("option:checked")).to_have_text("Warehouse")
    expect(page.get_by_role("link", name="Shelf task")).to_have_count(0)
    page.get_by_label("Name", exact=True).fill("Pallets")
    page.get_by_role("button", name="Create task").click()
    expect(page).to_have_url(re.compile(r"#/tasks/[0-9a-f-]{36}$"))
    task_id = page.url.rsplit("/", 1)[1]

    listed = _api(console, "GET", "account/v2/workspace/")
    warehouse = next(w for w in listed if w["name"] == "Warehouse")
    in_warehouse = _api(console, "GET", "recognition/v2/task/", params={"workspace": warehouse["id"]})
    assert [t["id"] for t in in_warehouse["results"]] == [task_id]
    in_default = _api(console, "GET", "recognition/v2/task/")
    assert [t["name"] for t in in_default["results"]] == ["Default task"]

    # Cancelling "New workspace…" keeps the one in use.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_label("Workspace").select_option(label="New workspace…")
    expect(page.get_by_label("Workspace").locator("option:checked")).to_have_text("Warehouse")

    # Signing out forgets the choice: the next account starts in its default workspace.
    page.get_by_role("button", name="Sign out").click()
    assert page.evaluate("localStorage.getItem('kestrel.workspace')") is None
