"""What the two HTTP Lambdas (api, classify) share: body normalisation, the app, Powertools."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from kestrel.api.app import build_app
from kestrel.api.body import normalise_body
from kestrel.api.errors import proxy_error
from kestrel.composition import get_ports
from kestrel.domain.errors import KestrelError
from kestrel.metrics import count

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

# Powertools keeps the request being resolved in class attributes (BaseRouter.current_event) and in
# the app's context dict, so a process resolves one request at a time: on Lambda an execution
# environment does; the local gateway runs each request in a worker process of its own
# (kestrel.local.pool) or, in process, one at a time (kestrel.local.execution).


def http_entry_point(service: str) -> Handler:
    """A Lambda handler serving the recognition API, logging and measuring as ``kestrel-<service>``."""
    logger = Logger(service=f"kestrel-{service}")
    tracer = Tracer(service=f"kestrel-{service}")
    metrics = Metrics(namespace="Kestrel", service=service)
    app = build_app(logger, ports=get_ports)

    @logger.inject_lambda_context(log_event=False)
    @tracer.capture_lambda_handler
    @metrics.log_metrics(capture_cold_start_metric=True)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            event = normalise_body(event)
        except KestrelError as error:
            return proxy_error(400, error.detail)
        response: dict[str, Any] = app.resolve(event, context)
        count(metrics, f"Http{int(response['statusCode']) // 100}xx")
        return response

    return lambda_handler
