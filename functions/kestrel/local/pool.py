"""A pool of execution environments for one Lambda function: worker processes that each answer
one request at a time, as Lambda runs them.

- Workers start on demand, up to ``size`` (Lambda's concurrency), and stay for the next request.
- A request that finds every worker busy waits for one; past ``queue_seconds`` (API Gateway's
  29 s) it is refused with ``NoEnvironmentFree`` (503 + Retry-After), never held forever.
- A worker that dies mid-request (killed, out of memory, a crash in native code) is replaced;
  its request gets ``EnvironmentDied`` (502). One that runs past the time left is stopped and
  replaced, and its request gets ``FunctionTimedOut`` (504), as Lambda's timeout ends the call.

Workers are forked from a ``forkserver`` process that has imported the handlers once, so a new
worker is ready in a fraction of a cold start and inherits no thread or socket of the gateway's.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from kestrel.local.execution import (
    EnvironmentDied,
    FunctionTimedOut,
    GatewayStopping,
    HandlerRaised,
    NoEnvironmentFree,
)
from kestrel.local.lambda_context import TIMEOUT_SECONDS, LocalLambdaContext
from kestrel.local.pool_worker import Invocation, WorkerSpec, serve
from kestrel.local.routes import Route

logger = logging.getLogger("kestrel.gateway")

#: Imported once in the fork server, so that every worker starts with them loaded.
PRELOAD = ["kestrel.local.pool_worker", "kestrel.handlers.api", "kestrel.handlers.classify"]
#: How long a new worker may take to import its handler and open its ports.
START_SECONDS = 60.0


def _context() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


@dataclass
class _Worker:
    process: BaseProcess
    connection: Connection

    def stop(self) -> None:
        self.connection.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)


class ProcessPool:
    """Up to ``spec``-described ``size`` worker processes for one route's function."""

    def __init__(self, route: Route, spec: WorkerSpec, size: int, queue_seconds: float = TIMEOUT_SECONDS) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one worker, not {size}")
        self.route = route
        self.spec = spec
        self.size = size
        self.queue_seconds = queue_seconds
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []  # idle and busy
        self._count = 0  # started and not yet discarded (idle, busy or starting)
        self._changed = threading.Condition()
        self._closed = False

    # --- taking and giving back workers ---

    def _start_worker(self) -> _Worker:
        parent_end, child_end = multiprocessing.Pipe()
        process = _context().Process(
            target=serve, args=(child_end, self.spec), name=f"{self.spec.function_name}-worker", daemon=True
        )
        process.start()
        child_end.close()
        worker = _Worker(process, parent_end)
        if not parent_end.poll(START_SECONDS):
            worker.stop()
            self._raise_if_closed()
            raise EnvironmentDied(f"a {self.spec.function_name} worker did not start within {START_SECONDS:g} s")
        try:
            parent_end.recv()  # ("ready", None)
        except (EOFError, OSError):
            worker.stop()
            self._raise_if_closed()  # stopped with the gateway (its exit ends daemon processes)
            raise EnvironmentDied(f"a {self.spec.function_name} worker died while starting") from None
        return worker

    def _raise_if_closed(self) -> None:
        if self._closed:
            raise GatewayStopping("the gateway is stopping")

    def _take(self, deadline: float) -> _Worker:
        """An idle worker, a new one if the pool is not full, or NoEnvironmentFree at ``deadline``."""
        with self._changed:
            while True:
                if self._closed:
                    raise GatewayStopping("the gateway is stopping")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.process.is_alive():
                        return worker
                    self._discard_locked(worker)  # died while idle: replace it on demand
                if self._count < self.size:
                    self._count += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NoEnvironmentFree(
                        f"every {self.spec.function_name} worker stayed busy for {self.queue_seconds:g} s; "
                        "try again shortly"
                    )
                self._changed.wait(timeout=left)
        try:
            worker = self._start_worker()
        except BaseException:
            with self._changed:
                self._count -= 1
                self._changed.notify()
            raise
        with self._changed:
            self._all.append(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._changed:
            if self._closed:
                worker.stop()
                return
            self._idle.append(worker)
            self._changed.notify()

    def _discard(self, worker: _Worker) -> None:
        with self._changed:
            self._discard_locked(worker)

    def _discard_locked(self, worker: _Worker) -> None:
        worker.stop()
        if worker in self._all:
            self._all.remove(worker)
        self._count -= 1
        self._changed.notify()

    # --- the Function interface ---

    def invoke(self, event: dict[str, Any], context: LocalLambdaContext) -> dict[str, Any]:
        queued_until = time.monotonic() + self.queue_seconds
        worker = self._take(min(queued_until, context.deadline))
        seconds = context.get_remaining_time_in_millis() / 1000
        if seconds <= 0:  # the wait took all the time there was: nothing left to run it in
            self._give_back(worker)
            raise NoEnvironmentFree(f"every {self.spec.function_name} worker stayed busy too long; try again shortly")
        try:
            worker.connection.send(Invocation(event, context.aws_request_id, seconds))
            if not worker.connection.poll(seconds):
                self._discard(worker)
                raise FunctionTimedOut(
                    f"{self.spec.function_name} did not answer within the gateway's time limit; "
                    "it was stopped (send less work per request)"
                )
            kind, value = worker.connection.recv()
        except (EOFError, OSError):
            code = worker.process.exitcode
            self._discard(worker)
            logger.error("%s worker died mid-request (exit code %s); replaced", self.spec.function_name, code)
            raise EnvironmentDied("the function's worker process died before it answered") from None
        except BaseException:
            self._discard(worker)  # whatever went wrong, a worker in an unknown state is not reused
            raise
        self._give_back(worker)
        if kind == "raised":
            raise HandlerRaised(str(value))
        answer: dict[str, Any] = value
        return answer

    def warm_up(self) -> None:
        """Start one worker now (Lambda's first cold start), so the first request does not wait."""
        self._give_back(self._take(time.monotonic() + START_SECONDS))

    def close(self) -> None:
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._changed.notify_all()
        for worker in idle:
            worker.stop()
            with self._changed:
                if worker in self._all:
                    self._all.remove(worker)

    def worker_pids(self) -> list[int]:
        """The process ids of the workers, idle or busy."""
        with self._changed:
            return [worker.process.pid for worker in self._all if worker.process.pid is not None]
