"""The console in a real headless Chromium (Debian's), driven by Playwright, against a real
local gateway with a real training worker.

Playwright only drives the browser here: it never downloads one (``playwright install`` needs a
network). ``.ci/run`` installs Debian's chromium when it is missing; without it the browser
tests are skipped with a message saying so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kestrel.composition import build_ports
from kestrel.local.worker import LocalWorker
from tests.conftest import RunningServer, local_settings, running_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LAPTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the web console in a headless Chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session (Debian's /usr/bin/chromium)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does it)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is missing: pip install -r requirements-dev.txt"
    )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Console:
    """A gateway serving the console and the API, a training worker, and a browser page on it."""

    server: RunningServer
    page: Page
    problems: list[str] = field(default_factory=list)  # uncaught page errors, console errors

    @property
    def url(self) -> str:
        return self.server.url

    def sign_in(self, token: str | None = None) -> None:
        """Sign in on the start page; with the server's own token, wait until it is accepted."""
        from playwright.sync_api import expect

        page = self.page
        page.goto(self.url)
        page.get_by_label("API token").fill(token or self.server.token)
        page.get_by_role("button", name="Sign in").click()
        if token is None:
            expect(page.get_by_role("heading", level=1, name="Tasks")).to_be_visible()

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        """Save the page as docs/screenshots/<name>.png (what docs/console.md shows)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.evaluate("document.getElementById('toasts')?.replaceChildren()")  # passing messages
        self.page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path


@contextmanager
def server_with_worker(tmp_path: Path) -> Iterator[RunningServer]:
    """A local gateway on a fresh data folder, with a training worker in a background thread."""
    ports = build_ports(local_settings(tmp_path / "data"))
    with running_server(ports, "local") as server:
        worker = LocalWorker(ports, poll_seconds=0.2)
        worker.start()  # trains in a background thread, as `kestrel serve` does
        try:
            yield server
        finally:
            worker.stop()


@pytest.fixture
def console(browser: Browser, tmp_path: Path) -> Iterator[Console]:
    """A fresh service and a fresh browser context (empty localStorage) on it."""
    with server_with_worker(tmp_path) as server:
        context = browser.new_context(viewport=LAPTOP, locale="en-GB", timezone_id="UTC")
        context.set_default_timeout(20_000)
        page = context.new_page()
        result = Console(server, page)

        def page_error(error: Any) -> None:
            result.problems.append(str(error))

        def console_message(message: Any) -> None:
            # Failed API calls are logged by the browser as "Failed to load resource" (the page
            # shows them); anything else logged as an error (a CSP refusal...) is a problem.
            if message.type == "error" and not message.text.startswith("Failed to load resource"):
                result.problems.append(message.text)

        page.on("pageerror", page_error)
        page.on("console", console_message)
        try:
            yield result
        finally:
            context.close()
        assert not result.problems, f"uncaught errors in the page: {result.problems}"
