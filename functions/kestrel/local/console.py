"""The console's static files, served at "/" as CloudFront serves them on AWS (web/ in the repository)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kestrel.api.public import API_PREFIX, DOCS_PATH, is_api_path
from kestrel.local.events import status_line
from kestrel.local.responses import Response

WEB_DIR = Path(__file__).resolve().parents[3] / "web"
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",  # ES modules load only with a JavaScript type
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
#: No page of the console may be framed by another site (clickjacking): the modern header and
#: the one older browsers know.
FRAME_HEADERS = [("Content-Security-Policy", "frame-ancestors 'none'"), ("X-Frame-Options", "DENY")]

_FRONT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kestrel</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;
line-height:1.5}}
code{{background:#f3f3f3;padding:.1rem .3rem}}</style></head>
<body><h1>Kestrel</h1>
<p>Trainable image recognition, compatible with the recognition v2 API.</p>
<ul><li><a href="{docs}/">API reference</a> (interactive)</li>
<li>API base: <code>{api}/</code>, with the header <code>Authorization: Token &lt;key&gt;</code></li>
<li>Create a token: <code>kestrel token create --email you@example.com</code></li></ul>
</body></html>
"""


def static_file(web_dir: Path, path: str) -> Path | None:
    """The file under ``web_dir`` that a URL path names ("/" is index.html), or None.

    Never a file outside ``web_dir`` (no "..", no symlink out) and never a hidden one."""
    relative = path.lstrip("/") or "index.html"
    parts = relative.split("/")
    if any(not part or part.startswith(".") or "\\" in part or "\x00" in part for part in parts):
        return None
    root = web_dir.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def static_response(environ: Mapping[str, Any], file: Path) -> Response:
    data = file.read_bytes()
    etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
    headers = [
        ("Content-Type", _STATIC_TYPES.get(file.suffix.lower(), "application/octet-stream")),
        ("ETag", etag),
        # No build step, so file names carry no content hash: browsers revalidate (a cheap 304).
        ("Cache-Control", "no-cache"),
        ("X-Content-Type-Options", "nosniff"),
        *FRAME_HEADERS,
    ]
    if etag in str(environ.get("HTTP_IF_NONE_MATCH") or ""):
        return status_line(304), headers, b""
    return status_line(200), [*headers, ("Content-Length", str(len(data)))], data


def console_response(environ: Mapping[str, Any], method: str, path: str, web_dir: Path) -> Response | None:
    """The console file (or the front page) for a GET/HEAD outside the API, else None."""
    if method not in ("GET", "HEAD") or is_api_path(path):
        return None
    console_file = static_file(web_dir, path)
    if console_file is not None:
        return static_response(environ, console_file)
    if path == "/":  # no console in web/: a page of links instead
        page = _FRONT_PAGE.format(docs=DOCS_PATH, api=API_PREFIX).encode()
        headers = [("Content-Type", "text/html; charset=utf-8"), *FRAME_HEADERS, ("Content-Length", str(len(page)))]
        return status_line(200), headers, page
    return None
