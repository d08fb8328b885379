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

    prefix: str  # a path prefix, matched at segment boundaries; "/" catches everything; a
    # segment "{name}" matches any one segment (as an API Gateway path parameter does)
    function_name: str
    handler: str | Handler
    memory_mb: int = 1024
    also: tuple[str, ...] = ()  # more prefixes the same function (one pool of workers) serves

    @classmethod
    def of(cls, prefix: str, function_name: str, handler: str | Handler, memory_mb: int = 1024) -> Route:
        return cls(prefix, function_name, handler, memory_mb)

    @property
    def prefixes(self) -> tuple[str, ...]:
        return (self.prefix, *self.also)

    def match_length(self, path: str) -> int:
        """How many segments of ``path`` the route's longest matching prefix covers; -1: none."""
        given = path.rstrip("/").split("/")
        best = -1
        for prefix in self.prefixes:
            wanted = prefix.rstrip("/").split("/")
            if len(given) >= len(wanted) and all(
                part == got or (part.startswith("{") and part.endswith("}") and got)
                for part, got in zip(wanted, given, strict=False)
            ):
                best = max(best, len(wanted))
        return best

    def matches(self, path: str) -> bool:
        return self.match_length(path) >= 0


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
        Route(
            f"{API_PREFIX}/classify",
            "kestrel-classify",
            "kestrel.handlers.classify:lambda_handler",
            2048,
            # Describing a sent image needs the model: similarity search runs where classify does.
            also=(f"{API_PREFIX}/task/{{task_id}}/similar",),
        ),
        Route("/", "kestrel-api", "kestrel.handlers.api:lambda_handler", 1024),
    ]


def longest_prefix_first(routes: list[Route]) -> list[Route]:
    """So that "/recognition/v2/classify" wins over "/" (the gateway also picks the longest match)."""
    return sorted(routes, key=lambda route: len(route.prefix.rstrip("/")), reverse=True)
