"""Which requests need no API token: the API reference, the console and signed blob URLs."""

from __future__ import annotations

API_PREFIX = "/recognition/v2"
#: Ximilar's account routes Kestrel serves (workspaces), behind the same token.
ACCOUNT_PREFIX = "/account/v2"
#: Every path the API serves (everything else is the console or a signed blob URL).
API_PREFIXES = (API_PREFIX, ACCOUNT_PREFIX)
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
DOCS_PATH = f"{API_PREFIX}/docs"


def is_public(method: str, path: str) -> bool:
    """True for paths any client may read without a token (CORS preflights included)."""
    if method.upper() == "OPTIONS":
        return True
    normalised = path.rstrip("/") or "/"
    if normalised in (OPENAPI_PATH, DOCS_PATH):
        return True
    return not is_api_path(normalised)


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)
