"""The local gateway: what API Gateway + the Lambda authorizer do on AWS, as a WSGI app on waitress.

Each request becomes an API Gateway REST proxy event (``kestrel.local.events``); non-public
paths first go through the same ``authorize`` function as the Lambda authorizer; then the
Lambda function that the routing table names (``kestrel.local.routes``) gets the event: in a
pool of worker processes that each answer one request at a time (``kestrel.local.pool``), or,
for handlers that exist only in this process, in this process (``kestrel.local.execution``).
The gateway itself only serves what S3 and CloudFront serve on AWS: signed blob URLs
(``kestrel.local.blob_urls``) and the console's static files (``kestrel.local.console``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kestrel.adapters.folder_blobs import FolderBlobStore
from kestrel.adapters.url_signing import BLOB_ROUTE
from kestrel.api.public import is_public
from kestrel.composition import Ports, set_ports
from kestrel.config import ENV_ORT_THREADS, MB, function_environment
from kestrel.local import console
from kestrel.local.blob_urls import blob_response
from kestrel.local.events import (
    MalformedResponse,
    authorizer_event,
    event_from_wsgi,
    raw_path,
    request_path,
    with_public_origin,
    wsgi_response,
)
from kestrel.local.execution import Function, InProcessFunction, InvocationFailed
from kestrel.local.lambda_context import TIMEOUT_SECONDS, LocalLambdaContext
from kestrel.local.pool import ProcessPool
from kestrel.local.pool_worker import WorkerSpec
from kestrel.local.responses import (
    Response,
    StartResponse,
    content_length,
    json_response,
    read_body,
    too_large_detail,
)
from kestrel.local.routes import Route, default_routes, longest_prefix_first
from kestrel.local.server import GatewayServer

__all__ = ["TIMEOUT_SECONDS", "Gateway", "GatewayServer", "Route", "make_server", "too_large_detail"]

logger = logging.getLogger("kestrel.gateway")

Authorizer = Callable[[dict[str, Any]], dict[str, Any]]

#: A synchronous Lambda response is capped at 6 MB on AWS; warn when a local one is bigger.
LAMBDA_RESPONSE_BYTES = 6 * MB


def default_workers() -> int:
    """One worker per core, at least two (so one slow request never holds every worker)."""
    return max(2, os.cpu_count() or 1)


def onnx_threads_per_worker(workers: int) -> int:
    """Workers x threads ~ cores: parallel workers share the cores instead of fighting over them."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _default_authorizer() -> tuple[Authorizer, type[Exception]]:
    from kestrel.handlers.authorizer import Unauthorized, authorize

    return authorize, Unauthorized


def build_functions(
    ports: Ports, routes: Sequence[Route], workers: int, queue_seconds: float = TIMEOUT_SECONDS
) -> list[Function]:
    """One process pool of ``workers`` per route, or (``workers=0``) each route in this process."""
    if workers == 0:
        return [InProcessFunction(route) for route in routes]
    functions: list[Function] = []
    environment = function_environment()
    # KESTREL_ORT_THREADS, when set, is taken as it is; otherwise each worker gets its share.
    configured = ENV_ORT_THREADS in environment
    threads = ports.settings.vision.ort_threads if configured else onnx_threads_per_worker(workers)
    for route in routes:
        if not isinstance(route.handler, str):
            raise ValueError(
                f"route {route.prefix!r}: a worker process can only load a handler named 'module:attribute'"
            )
        spec = WorkerSpec(
            route.function_name,
            route.handler,
            route.memory_mb,
            ports.settings,
            environment,
            threads,
        )
        functions.append(ProcessPool(route, spec, workers, queue_seconds))
    return functions


class Gateway:
    """The WSGI application. Thread-safe: waitress calls it from its worker threads."""

    def __init__(
        self,
        ports: Ports,
        routes: Sequence[Route] | None = None,
        authorizer: Authorizer | None = None,
        unauthorized: type[Exception] | None = None,
        *,
        workers: int = 0,
        queue_seconds: float = TIMEOUT_SECONDS,
        timeout_seconds: float = TIMEOUT_SECONDS,
        public_url: str | None = None,
    ) -> None:
        self.ports = ports
        chosen = longest_prefix_first(list(routes if routes is not None else default_routes()))
        self.functions = build_functions(ports, chosen, workers, queue_seconds)
        self._authorizer = authorizer
        self._unauthorized = unauthorized
        self.max_request_bytes = ports.settings.limits.max_request_bytes
        self.public_url = public_url
        self.timeout_seconds = timeout_seconds  # API Gateway's limit: queueing and running together

    def authorizer(self) -> tuple[Authorizer, type[Exception]]:
        if self._authorizer is None or self._unauthorized is None:
            default, unauthorized = _default_authorizer()
            self._authorizer = self._authorizer or default
            self._unauthorized = self._unauthorized or unauthorized
        return self._authorizer, self._unauthorized

    def warm_up(self) -> None:
        """Load every handler now instead of on its first request (``kestrel serve`` does this);
        the functions' first workers start side by side."""
        self.authorizer()
        failures: list[BaseException] = []

        def start(function: Function) -> None:
            try:
                function.warm_up()
            except Exception as error:  # noqa: BLE001 - re-raised below, once every function had its turn
                failures.append(error)

        starting = [threading.Thread(target=start, args=(function,)) for function in self.functions]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        if failures:
            raise failures[0]

    def close(self) -> None:
        """Stop the worker processes (the server calls this when it stops)."""
        for function in self.functions:
            function.close()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = request_path(environ)
        try:
            status, headers, body = self.respond(environ, method, path)
        except Exception:
            # The traceback goes to the server log only: it can name files, keys and data.
            logger.exception("%s %s failed", method, path)
            status, headers, body = json_response(500, {"detail": "internal error"})
        elapsed_ms = (time.perf_counter() - started) * 1000
        # Path only: query strings can hold signatures, and headers hold tokens.
        logger.info("%s %s %s %.1fms", method, path, status.split(" ", 1)[0], elapsed_ms)
        start_response(status, headers)
        # HEAD: same headers (Content-Length included), no body; waitress leaves that to the app.
        return [b""] if method == "HEAD" else [body]

    def respond(self, environ: Mapping[str, Any], method: str, path: str) -> Response:
        if path.startswith(BLOB_ROUTE) and isinstance(self.ports.blobs, FolderBlobStore):
            key = path[len(BLOB_ROUTE) :]
            return blob_response(environ, method, key, self.ports.blobs, self.ports.settings.limits.max_image_bytes)
        static = console.console_response(environ, method, path, console.WEB_DIR)
        if static is not None:
            return static
        length = content_length(environ)
        if length is not None and length > self.max_request_bytes:
            # Refused on the declared length alone: the body is never read.
            return json_response(413, {"detail": too_large_detail(length, self.max_request_bytes)})
        event = event_from_wsgi(environ, read_body(environ, length))
        if self.public_url:
            event = with_public_origin(event, self.public_url)
        request_id = event["requestContext"]["requestId"]
        # Public only if both spellings of the path are: a percent-encoded path must not slip
        # past the authorizer when the handler decodes it differently.
        if not (is_public(method, path) and is_public(method, raw_path(environ))):
            refused = self._authorize(event)
            if refused is not None:
                return refused
        return self._invoke(event, method, path, request_id)

    def _authorize(self, event: dict[str, Any]) -> Response | None:
        """None when the authorizer allows the request (its context is then in the event)."""
        authorize, unauthorized = self.authorizer()
        try:
            policy = authorize(authorizer_event(event))
        except unauthorized as error:
            detail = str(getattr(error, "detail", "Unauthorized"))
            request_id = event["requestContext"]["requestId"]
            return json_response(
                401, {"detail": detail}, [("WWW-Authenticate", "Token"), ("x-amzn-RequestId", request_id)]
            )
        event["requestContext"]["authorizer"] = {**policy.get("context", {}), "principalId": policy["principalId"]}
        return None

    def _invoke(self, event: dict[str, Any], method: str, path: str, request_id: str) -> Response:
        matching = [f for f in self.functions if f.route.matches(path)]
        function = max(matching, key=lambda f: f.route.match_length(path), default=None)
        if function is None:
            return json_response(404, {"detail": f"No function serves {path}"})
        route = function.route
        context = LocalLambdaContext.for_function(
            route.function_name, route.memory_mb, str(uuid.uuid4()), self.timeout_seconds
        )
        try:
            result = function.invoke(event, context)
            status, headers, data = wsgi_response(result)
        except InvocationFailed as failed:
            logger.error("%s %s: %s: %s", method, path, route.function_name, failed.detail)
            extra = [("Retry-After", str(failed.retry_after))] if failed.retry_after is not None else []
            detail = "internal error" if failed.status == 500 else failed.detail
            return json_response(failed.status, {"detail": detail}, [*extra, ("x-amzn-RequestId", request_id)])
        except MalformedResponse as error:
            # API Gateway answers 502 when a Lambda returns something that is not a proxy response.
            logger.error("%s %s: %s returned a malformed response: %s", method, path, route.function_name, error)
            return json_response(502, {"detail": "internal error: the handler's response was malformed"})
        if len(data) > LAMBDA_RESPONSE_BYTES:
            logger.warning("%s %s: response of %d bytes is over Lambda's 6 MB limit", method, path, len(data))
        if not any(name.lower() == "x-amzn-requestid" for name, _ in headers):
            headers.append(("x-amzn-RequestId", request_id))
        return status, headers, data


def make_server(
    ports: Ports,
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int = 8,
    *,
    workers: int = 0,
    queue_seconds: float = TIMEOUT_SECONDS,
    timeout_seconds: float = TIMEOUT_SECONDS,
    public_url: str | None = None,
    routes: Sequence[Route] | None = None,
    authorizer: Authorizer | None = None,
    unauthorized: type[Exception] | None = None,
) -> GatewayServer:
    """A bound (not yet serving) gateway on ``host:port`` (port 0: any free port, see ``.url``).

    ``workers``: the size of each function's pool of worker processes (``kestrel serve``: one a
    core); 0 runs the handlers in this process, one request at a time (tests whose adapters live
    only in this process: moto, stubs). Installs ``ports`` process-wide (``set_ports``) for the
    authorizer and in-process handlers: with several gateways in one process, the last one wins.
    ``queue_seconds`` / ``timeout_seconds``: how long a request may wait for a worker / take in all
    (API Gateway's 29 s; tests shorten them). Workers start from a fork server, which imports the
    main module as multiprocessing does: a script that serves with workers needs the
    ``if __name__ == "__main__":`` guard (``kestrel serve`` and pytest have it).

    ``routes`` / ``authorizer`` replace the deployed handlers (tests inject stubs); ``unauthorized``
    is the exception type the authorizer raises to refuse a request."""
    set_ports(ports)
    gateway = Gateway(
        ports,
        routes,
        authorizer,
        unauthorized,
        workers=workers,
        queue_seconds=queue_seconds,
        timeout_seconds=timeout_seconds,
        public_url=public_url,
    )
    # Enough front threads to hold every worker busy and still parse and queue the next requests.
    return GatewayServer(gateway, host, port, max(threads, 2 * workers * len(gateway.functions)))
