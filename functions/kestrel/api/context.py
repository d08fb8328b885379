"""What a route needs from the request beyond its parameters: the owner, URLs, paging."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

from kestrel.domain.errors import InvalidInput, Unauthenticated
from kestrel.ports import Ports
from kestrel.store.keys import Space
from kestrel.store.paging import Page, PageRequest, decode_cursor, encode_cursor, listing_tag
from kestrel.store.workspaces import resolve_space

_PAGING_PARAMS = ("page", "cursor")

# Where routes get their ports: installed by the entry point that builds the app (the handlers
# pass the composition root's ``get_ports``), so the API layer never builds adapters itself.
_ports_provider: Callable[[], Ports] | None = None


def provide_ports(provider: Callable[[], Ports]) -> None:
    global _ports_provider
    _ports_provider = provider


def current_ports() -> Ports:
    if _ports_provider is None:
        raise RuntimeError("no ports installed: build the app with build_app(logger, ports=...)")
    return _ports_provider()


# Parameters that do not change which items a listing holds. ``workspace`` does: a cursor made in
# one workspace's listing is refused in another's.
_NEUTRAL_PARAMS = (*_PAGING_PARAMS, "page_size")
WORKSPACE_PARAM = "workspace"


class RequestScope:
    """The current request as seen by a route: who asks, on which URL, with which ports."""

    def __init__(self, router: BaseRouter) -> None:
        # Powertools keeps the current event on the class (one request at a time per process);
        # the ports come from the entry point's provider (the composition root's get_ports).
        self.event = router.current_event
        self.ports: Ports = current_ports()

    @property
    def raw(self) -> dict[str, Any]:
        return self.event.raw_event

    @property
    def owner_id(self) -> str:
        authorizer = (self.raw.get("requestContext") or {}).get("authorizer") or {}
        owner = authorizer.get("owner_id") or authorizer.get("principalId")
        if not owner:
            raise Unauthenticated("the request carries no authenticated owner; send 'Authorization: Token <key>'")
        return str(owner)

    @cached_property
    def space(self) -> Space:
        """The workspace the request addresses: ``workspace`` in the query or in the JSON body
        (the ximilar client sends it in the query of GET/DELETE and in the body of POST/PUT),
        else the owner's default workspace. Both given and different is refused."""
        chosen = {value for name, value in self.query_pairs() if name == WORKSPACE_PARAM}
        body = self._json_body()
        if isinstance(body, dict) and body.get(WORKSPACE_PARAM) is not None:
            if not isinstance(body[WORKSPACE_PARAM], str):
                raise InvalidInput("'workspace' must be a workspace id (a string)")
            chosen.add(body[WORKSPACE_PARAM])
        if len(chosen) > 1:
            raise InvalidInput(f"'workspace' is given more than once with different values: {sorted(chosen)}")
        return resolve_space(self.ports.items, self.owner_id, next(iter(chosen), None))

    def _json_body(self) -> Any:
        text = self.raw.get("body")
        if not text or self.raw.get("isBase64Encoded"):
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None  # the route's own validation answers for a malformed body

    def _header(self, name: str) -> str | None:
        for key, value in (self.raw.get("headers") or {}).items():
            if key.lower() == name:
                return str(value)
        return None

    @property
    def root_url(self) -> str:
        """scheme://host[:port] as the client addressed us (so links work behind any front)."""
        context = self.raw.get("requestContext") or {}
        scheme = (self._header("x-forwarded-proto") or "https").split(",")[0].strip()
        host = self._header("host") or context.get("domainName") or "localhost"
        return f"{scheme}://{host}"

    @property
    def url_path(self) -> str:
        context = self.raw.get("requestContext") or {}
        return str(context.get("path") or self.raw.get("path") or "/")

    def query_pairs(self) -> list[tuple[str, str]]:
        multi = self.raw.get("multiValueQueryStringParameters") or {}
        if multi:
            return [(name, value) for name, values in multi.items() for value in values]
        return list((self.raw.get("queryStringParameters") or {}).items())

    def listing_tag(self) -> str:
        """Ties a cursor to this owner and this listing's path and filters."""
        filters = sorted((k, v) for k, v in self.query_pairs() if k not in _NEUTRAL_PARAMS)
        return listing_tag(self.owner_id, f"{self.url_path.rstrip('/')}?{urlencode(filters)}")

    def page_request(self, page: int, page_size: int, cursor: str | None) -> PageRequest:
        limits = self.ports.settings.limits
        if page_size > limits.max_page_size:
            raise InvalidInput(f"page_size {page_size} is over the maximum of {limits.max_page_size}")
        if cursor:
            cursor_page, after = decode_cursor(cursor, self.listing_tag())
            return PageRequest(page=cursor_page, page_size=page_size, after=after)
        return PageRequest(page=page, page_size=page_size)

    def _page_url(self, page: int, cursor: str | None) -> str:
        pairs = [(k, v) for k, v in self.query_pairs() if k not in _PAGING_PARAMS]
        pairs.append(("page", str(page)))
        if cursor:
            pairs.append(("cursor", cursor))
        return f"{self.root_url}{self.url_path}?{urlencode(pairs)}"

    def page_links(self, page: Page) -> dict[str, Any]:
        """A page's ``count``, ``next`` and ``previous`` (its ``results`` are the route's to render)."""
        next_url = None
        if page.next_after is not None:
            next_url = self._page_url(page.page + 1, encode_cursor(self.listing_tag(), page.page + 1, page.next_after))
        previous_url = self._page_url(page.page - 1, None) if page.has_previous else None
        return {"count": page.count, "next": next_url, "previous": previous_url}
