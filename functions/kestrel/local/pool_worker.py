"""The inside of one execution environment: a process that answers one request at a time.

Started by ``kestrel.local.pool``; it installs the function's environment and its own ports (its
own database connections, blob store and model cache), imports the handler, says it is ready, and
then answers each request it receives on its pipe until the pipe closes (the gateway stopped or
died: the process then ends too)."""

from __future__ import annotations

import logging
import signal
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from kestrel.config import Settings, apply_function_environment
from kestrel.local.lambda_context import LocalLambdaContext

logger = logging.getLogger("kestrel.gateway.worker")


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs, sent to it once when it starts (picklable)."""

    function_name: str
    handler: str  # "module:attribute"
    memory_mb: int
    settings: Settings
    environment: dict[str, str]  # the function's environment variables, as Lambda configures them
    onnx_threads: int


@dataclass(frozen=True)
class Invocation:
    event: dict[str, Any]
    request_id: str
    seconds: float  # time left before API Gateway gives up


def _set_up(spec: WorkerSpec) -> Any:
    from kestrel.composition import build_ports, set_ports
    from kestrel.local.powertools import quiet_local_powertools
    from kestrel.local.routes import import_handler
    from kestrel.vision.session import set_default_threads

    apply_function_environment(spec.environment)
    quiet_local_powertools()
    set_default_threads(spec.onnx_threads)
    set_ports(build_ports(spec.settings))
    return import_handler(spec.handler)


def serve(connection: Connection, spec: WorkerSpec) -> None:
    """The worker process's main function (runs until its pipe closes)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Ctrl-C reaches the whole process group: the gateway decides when its workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        handler = _set_up(spec)
        connection.send(("ready", None))
    except Exception:
        logger.exception("%s: the handler %s failed to load", spec.function_name, spec.handler)
        handler = None
        connection.send(("ready", None))  # ready to say so, request after request
    while True:
        try:
            invocation: Invocation = connection.recv()
            connection.send(_answer(handler, spec, invocation))
        except (EOFError, OSError):
            return  # the gateway closed the pipe or died (then nobody waits for the answer)


def _answer(handler: Any, spec: WorkerSpec, invocation: Invocation) -> tuple[str, Any]:
    if handler is None:
        return ("raised", f"the handler {spec.handler} could not be loaded (see the server log)")
    context = LocalLambdaContext.for_function(
        spec.function_name, spec.memory_mb, invocation.request_id, invocation.seconds
    )
    try:
        return ("answer", handler(invocation.event, context))
    except Exception as error:  # noqa: BLE001 - Lambda reports an unhandled error; so do we
        logger.error("%s raised:\n%s", spec.function_name, traceback.format_exc())
        return ("raised", type(error).__name__)
