"""The routing table: which Lambda function answers which path prefix, as API Gateway routes it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kestrel.api.public import API_PREFIX

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    """One row of the routing table: requests under ``prefix`` go to one Lambda function.

    ``handler`` is ``"module:attribute"`` (what a worker process imports, like Lambda's handler
    setting) or, for a gateway that runs its handlers in its own process, a callable (tests)."""

    prefix: str  # a path prefix, matched at segment boundaries; "/" catches everything
    function_name: str
    handler: str | Handler
    memory_mb: int = 1024

    @classmethod
    def of(cls, prefix: str, function_name: str, handler: str | Handler, memory_mb: int = 1024) -> Route:
        return cls(prefix, function_name, handler, memory_mb)

    def matches(self, path: str) -> bool:
        prefix = self.prefix.rstrip("/")
        return not prefix or path == prefix or path.startswith(prefix + "/")


def import_handler(handler: str | Handler) -> Handler:
    """The callable a route names (imported now if it is named by ``module:attribute``)."""
    if not isinstance(handler, str):
        return handler
    module, _, attribute = handler.partition(":")
    loaded: Handler = getattr(importlib.import_module(module), attribute or "lambda_handler")
    return loaded


def default_routes() -> list[Route]:
    """The functions API Gateway routes to in the deployed stack (classify has its own Lambda)."""
    return [
        Route(f"{API_PREFIX}/classify", "kestrel-classify", "kestrel.handlers.classify:lambda_handler", 2048),
        Route("/", "kestrel-api", "kestrel.handlers.api:lambda_handler", 1024),
    ]


def longest_prefix_first(routes: list[Route]) -> list[Route]:
    """So that "/recognition/v2/classify" wins over "/"."""
    return sorted(routes, key=lambda route: len(route.prefix.rstrip("/")), reverse=True)
