"""How the gateway runs a Lambda function: the interface, its failures, and the in-process kind.

On AWS each request of a function goes to an execution environment that answers one request at a
time. ``kestrel serve`` runs a pool of such environments as processes (``kestrel.local.pool``).
``InProcessFunction`` is the single environment that lives in the gateway's own process: for
handlers that exist only there (test stubs, AWS adapters under moto, whose fakes live in memory).
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from kestrel.local.lambda_context import LocalLambdaContext
from kestrel.local.routes import Handler, Route, import_handler


class InvocationFailed(Exception):
    """The function gave no answer; ``status`` is what API Gateway answers instead."""

    status = 502
    retry_after: int | None = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NoEnvironmentFree(InvocationFailed):
    """Every execution environment stayed busy for the whole wait (Lambda's throttling answer)."""

    status = 503
    retry_after = 1


class EnvironmentDied(InvocationFailed):
    """The process that held the request died before it answered."""

    status = 502


class GatewayStopping(EnvironmentDied):
    """The gateway is shutting down: its workers are being stopped, so nothing new runs."""

    status = 503


class FunctionTimedOut(InvocationFailed):
    """The function ran past API Gateway's limit; its environment is stopped and replaced."""

    status = 504


class HandlerRaised(InvocationFailed):
    """The handler raised instead of answering (the traceback is in the server log)."""

    status = 500


class Function(Protocol):
    """One Lambda function as the gateway calls it."""

    route: Route

    def invoke(self, event: dict[str, Any], context: LocalLambdaContext) -> dict[str, Any]: ...

    def warm_up(self) -> None: ...

    def close(self) -> None: ...


# Powertools keeps the request being resolved in class attributes shared by every app in a
# process, so one process is one execution environment: in-process functions take turns.
_ONE_ENVIRONMENT = threading.Lock()


class InProcessFunction:
    """The function run in the gateway's process, one request at a time (one environment)."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self._handler: Handler | None = None
        self._loading = threading.Lock()

    def _loaded(self) -> Handler:
        with self._loading:  # imported on first use, so a broken module fails its requests only
            if self._handler is None:
                self._handler = import_handler(self.route.handler)
            return self._handler

    def invoke(self, event: dict[str, Any], context: LocalLambdaContext) -> dict[str, Any]:
        handler = self._loaded()
        with _ONE_ENVIRONMENT:
            return handler(event, context)

    def warm_up(self) -> None:
        self._loaded()

    def close(self) -> None:
        return None
