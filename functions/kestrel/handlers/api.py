"""Lambda entry point for the recognition API (every route but classify)."""

from __future__ import annotations

from kestrel.handlers.http import http_entry_point

lambda_handler = http_entry_point("api")
