"""A tiny HTTP server of one JPEG for ``_url`` records (tests allow its host explicitly)."""

from __future__ import annotations

import http.server
from typing import Any


class ImageHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with ``body`` as a JPEG, after ``hold`` (subclasses make it wait)."""

    body = b""

    def hold(self) -> None:
        """Called before answering: nothing here; slow servers wait in their own."""

    def do_GET(self) -> None:
        self.hold()
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass
