"""Which requests need no API token: the API reference, the console and signed blob URLs."""

from __future__ import annotations

API_PREFIX = "/recognition/v2"
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
DOCS_PATH = f"{API_PREFIX}/docs"


def is_public(method: str, path: str) -> bool:
    """True for paths any client may read without a token (CORS preflights included)."""
    if method.upper() == "OPTIONS":
        return True
    normalised = path.rstrip("/") or "/"
    if normalised in (OPENAPI_PATH, DOCS_PATH):
        return True
    return not normalised.startswith(API_PREFIX)
