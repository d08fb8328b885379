"""The HTTP front on waitress: parses requests, hands them to the gateway, writes answers.

Waitress's own errors (a malformed request, a body over its hard cap) are answered as JSON too,
and the server can be closed from any thread."""

from __future__ import annotations

import json
import threading
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask
from waitress.trigger import trigger

from kestrel.local.responses import too_large_detail


def _error_detail(code: int, reason: str, body: str, limit: int) -> tuple[int, str, str]:
    if code == 413:
        return code, reason, too_large_detail(None, limit)
    if code == 501:
        # waitress's only 501: a Transfer-Encoding other than chunked. The request is what is
        # wrong, and a 4xx says so (as API Gateway answers it).
        detail = (
            "the request's Transfer-Encoding is not supported: send the body with a Content-Length "
            "header or with 'Transfer-Encoding: chunked'"
        )
        return 400, "Bad Request", detail
    return code, reason, f"{reason}: {body}"


def _json_error_channel(limit: int) -> type[HTTPChannel]:
    """A waitress channel whose own errors (malformed request, body over its hard cap) are JSON too."""

    class JsonErrorTask(ErrorTask):
        def execute(self) -> None:
            error = self.request.error
            code, reason, detail = _error_detail(error.code, error.reason, error.body, limit)
            body = json.dumps({"detail": detail}).encode()
            self.status = f"{code} {reason}"
            self.response_headers.extend([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class JsonErrorChannel(HTTPChannel):
        error_task_class = JsonErrorTask

    return JsonErrorChannel


class GatewayServer:
    """A running gateway: ``serve_forever()`` in one thread, ``close()`` from any thread."""

    def __init__(self, gateway: Any, host: str, port: int, threads: int) -> None:
        self.gateway = gateway
        self._map: dict[int, Any] = {}
        limits = gateway.ports.settings.limits
        # Bodies up to this size are spooled to a temporary file by waitress (not kept in memory)
        # and then refused with our JSON 413; larger ones are cut off by waitress straight away.
        hard_cap = 4 * max(limits.max_request_bytes, limits.max_image_bytes)
        self._server = create_server(
            gateway,
            map=self._map,
            host=host,
            port=port,
            threads=threads,
            ident="kestrel",
            max_request_body_size=hard_cap,
        )
        channel_class = _json_error_channel(limits.max_request_bytes)
        for dispatcher in list(self._map.values()):
            if isinstance(dispatcher, BaseWSGIServer):
                dispatcher.channel_class = channel_class
        # Our own trigger: close() wakes the event loop through it and closes everything from there.
        self._trigger = trigger(self._map)
        listening = [d for d in self._map.values() if isinstance(d, BaseWSGIServer)]
        self.host = host
        self.port: int = int(listening[0].effective_port)
        url_host = "localhost" if host in ("", "0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
        self.url = f"http://{url_host}:{self.port}/"
        self._loop_thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._closing = False

    def serve_forever(self) -> None:
        """Serve until ``close()``; returns once the server has stopped."""
        self._loop_thread = threading.current_thread()
        try:
            if not self._closing:
                self._server.run()
        finally:
            # Gives worker threads up to 5 s to finish the request in hand, then stops them.
            self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
            wasyncore.close_all(self._map, ignore_all=True)  # in case close() raced with the start
            self.gateway.close()
            self._stopped.set()

    def close(self, timeout: float = 10.0) -> None:
        """Stop serving: close the listening socket and every connection. Safe to call twice."""
        if self._closing:
            if self._loop_thread is not None and self._loop_thread is not threading.current_thread():
                self._stopped.wait(timeout)
            return
        self._closing = True
        if self._loop_thread is None:
            # Never served: nothing runs the loop, so close the sockets here.
            wasyncore.close_all(self._map)
            self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
            self.gateway.close()
            self._stopped.set()
            return
        # The asyncore map belongs to the loop thread; close it from there.
        self._trigger.pull_trigger(lambda: wasyncore.close_all(self._map, ignore_all=True))
        if self._loop_thread is not threading.current_thread():  # e.g. not from a signal handler
            self._stopped.wait(timeout)
