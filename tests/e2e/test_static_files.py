"""The local gateway serves the console's static files from web/, as CloudFront does on AWS.

Plain HTTP, no browser: index.html at "/", assets by path with the content types browsers need
(an ES module needs a JavaScript type), revalidation headers, nothing outside web/."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import kestrel.local.console as gateway
from kestrel.composition import build_ports
from tests.conftest import RunningServer, local_settings, running_server

pytestmark = pytest.mark.e2e

WEB = Path(__file__).resolve().parents[2] / "web"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(build_ports(local_settings(tmp_path / "data")), "local") as running:
        yield running


def raw_get(server: RunningServer, path: str) -> tuple[int, bytes]:
    """GET a path exactly as written (requests would normalise "/../")."""
    connection = http.client.HTTPConnection("127.0.0.1", server.server.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_console_is_served_at_the_root(server: RunningServer) -> None:
    page = requests.get(server.url, timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.content == (WEB / "index.html").read_bytes()
    assert 'href="/recognition/v2/docs/"' in page.text  # works before the script runs, too
    assert page.headers["Cache-Control"] == "no-cache" and page.headers["ETag"]


def test_no_site_may_frame_the_console(server: RunningServer) -> None:
    # Clickjacking: a hostile page could frame the console and trick clicks on its buttons.
    for path in ("", "index.html", "js/main.js", "styles.css"):
        response = requests.get(server.url + path, timeout=10)
        assert response.status_code == 200, path
        assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'", path
        assert response.headers["X-Frame-Options"] == "DENY", path


def test_every_file_of_the_console_is_served_with_its_type(server: RunningServer) -> None:
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}
    files = [path for path in WEB.rglob("*") if path.is_file()]
    assert len(files) > 10
    for path in files:
        url = server.url + path.relative_to(WEB).as_posix()
        response = requests.get(url, timeout=10)
        assert response.status_code == 200, url
        assert response.content == path.read_bytes(), url
        assert response.headers["Content-Type"].startswith(types[path.suffix]), url
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_every_module_import_names_a_file_and_its_exports() -> None:
    """No build step: each import must name a real file and what it exports (a typo would
    otherwise only show in a browser, as a blank page)."""
    imports = 0
    for module in WEB.rglob("*.js"):
        for names, target in re.findall(r'^import \{ (.*) \} from "(\.{1,2}/[^"]+)";$', module.read_text(), re.M):
            source = (module.parent / target).resolve()
            assert source.is_file(), f"{module}: {target}"
            declared = r"^export (?:async )?(?:function|const|class|let) (\w+)"
            exported = set(re.findall(declared, source.read_text(), re.M))
            for name in names.split(","):
                assert name.strip() in exported, f"{module}: {name.strip()} is not exported by {target}"
                imports += 1
    assert imports > 50


def test_an_unchanged_file_is_a_304(server: RunningServer) -> None:
    first = requests.get(server.url + "styles.css", timeout=10)
    again = requests.get(server.url + "styles.css", headers={"If-None-Match": first.headers["ETag"]}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    head = requests.head(server.url + "js/main.js", timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == (WEB / "js" / "main.js").stat().st_size


@pytest.mark.parametrize(
    "path",
    [
        "/../pyproject.toml",
        "/js/../../pyproject.toml",
        "/%2e%2e/pyproject.toml",
        "/js/%2e%2e/%2e%2e/README.md",
        "/..%2fpyproject.toml",
        "/js%2f..%2f..%2fREADME.md",
        "//etc/passwd",
        "/js/",
        "/.hidden",
    ],
)
def test_nothing_outside_web_is_served(server: RunningServer, path: str, tmp_path: Path) -> None:
    status, body = raw_get(server, path)
    assert status in (400, 401, 404), (path, status)
    assert b"[build-system]" not in body and b"root:" not in body and b"# Kestrel" not in body


def test_hidden_files_and_symlinks_out_of_web_are_not_served(tmp_path: Path) -> None:
    web = tmp_path / "web"
    (web / "js").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>t</title>")
    (web / ".env").write_text("SECRET=1")
    (tmp_path / "secret.txt").write_text("secret")
    (web / "js" / "leak.txt").symlink_to(tmp_path / "secret.txt")
    assert gateway.static_file(web, "/") == (web / "index.html").resolve()
    assert gateway.static_file(web, "/.env") is None
    assert gateway.static_file(web, "/js/leak.txt") is None
    assert gateway.static_file(web, "/js/../index.html") is None
    assert gateway.static_file(web, "/missing.js") is None


def test_without_a_console_the_root_is_a_page_of_links(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(gateway, "WEB_DIR", tmp_path / "no-web")
    page = requests.get(server.url, timeout=10)
    assert page.status_code == 200 and 'href="/recognition/v2/docs/"' in page.text


def test_api_paths_are_never_static_files(server: RunningServer) -> None:
    response = requests.get(server.url + "recognition/v2/task/", timeout=10)
    assert response.status_code == 401 and response.json()["detail"]
    # No config.json locally: the console falls back to its own origin.
    assert requests.get(server.url + "config.json", timeout=10).status_code == 404
