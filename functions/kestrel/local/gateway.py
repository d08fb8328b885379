"""The local gateway: what API Gateway + the Lambda authorizer do on AWS, as a WSGI app on waitress.

Each request becomes an API Gateway REST proxy event (``kestrel.local.events``); non-public
paths first go through the same ``authorize`` function as the Lambda authorizer; then the
Lambda handler that the routing table names gets the event and a LambdaContext look-alike.
The gateway itself only serves what S3 and CloudFront serve on AWS: signed blob URLs and the
console's static files (``web/``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask
from waitress.trigger import trigger

from kestrel.adapters.folder_blobs import FolderBlobStore
from kestrel.adapters.url_signing import BLOB_ROUTE
from kestrel.api.public import API_PREFIX, DOCS_PATH, is_api_path, is_public
from kestrel.composition import Ports, set_ports
from kestrel.config import MB
from kestrel.local.events import (
    MalformedResponse,
    authorizer_event,
    decoded_query,
    event_from_wsgi,
    raw_path,
    request_path,
    status_line,
    wsgi_response,
)
from kestrel.ports.blobs import BlobNotFound

logger = logging.getLogger("kestrel.gateway")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
Authorizer = Callable[[dict[str, Any]], dict[str, Any]]
StartResponse = Callable[..., Any]
Response = tuple[str, list[tuple[str, str]], bytes]

#: API Gateway's integration timeout; handlers see it through get_remaining_time_in_millis().
TIMEOUT_SECONDS = 29
UPLOAD_URL_PATH = f"{API_PREFIX}/training-image/upload-url/"
#: A synchronous Lambda response is capped at 6 MB on AWS; warn when a local one is bigger.
LAMBDA_RESPONSE_BYTES = 6 * MB


@dataclass
class LocalLambdaContext:
    """What a handler reads from Lambda's context object (Powertools' Logger reads the first four)."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    deadline: float = field(default_factory=lambda: time.monotonic() + TIMEOUT_SECONDS)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class Route:
    """One row of the routing table: requests under ``prefix`` go to one Lambda function."""

    prefix: str  # a path prefix, matched at segment boundaries; "/" catches everything
    function_name: str
    load: Callable[[], Handler]  # imported on first use, so a broken module fails its requests only
    memory_mb: int = 1024
    _handler: Handler | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def of(cls, prefix: str, function_name: str, handler: Handler, memory_mb: int = 1024) -> Route:
        """A route to a handler that is already at hand (tests inject stubs this way)."""
        return cls(prefix, function_name, lambda: handler, memory_mb)

    def matches(self, path: str) -> bool:
        prefix = self.prefix.rstrip("/")
        return not prefix or path == prefix or path.startswith(prefix + "/")

    def handler(self) -> Handler:
        if self._handler is None:
            with self._lock:
                if self._handler is None:
                    self._handler = self.load()
        return self._handler


def _import_handler(module: str) -> Handler:
    handler: Handler = importlib.import_module(module).lambda_handler
    return handler


def _load_api() -> Handler:
    return _import_handler("kestrel.handlers.api")


def _load_classify() -> Handler:
    # classify has its own Lambda on AWS (more memory, onnxruntime); until that handler exists
    # the api handler answers the route.
    if importlib.util.find_spec("kestrel.handlers.classify") is None:
        return _load_api()
    return _import_handler("kestrel.handlers.classify")


def default_routes() -> list[Route]:
    """The functions API Gateway routes to in the deployed stack."""
    return [
        Route(f"{API_PREFIX}/classify", "kestrel-classify", _load_classify, memory_mb=2048),
        Route("/", "kestrel-api", _load_api, memory_mb=1024),
    ]


def _default_authorizer() -> tuple[Authorizer, type[Exception]]:
    from kestrel.handlers.authorizer import Unauthorized, authorize

    return authorize, Unauthorized


def _json(code: int, payload: Mapping[str, Any], headers: Iterable[tuple[str, str]] = ()) -> Response:
    body = json.dumps(payload).encode()
    return (
        status_line(code),
        [("Content-Type", "application/json"), *headers, ("Content-Length", str(len(body)))],
        body,
    )


def too_large_detail(size: int | None, limit: int) -> str:
    """Why a body was refused, and the upload flow that takes large images instead."""
    size_text = f"{size} bytes" if size is not None else "over the limit"
    return (
        f"The request body is {size_text}; one request may carry at most {limit} bytes "
        f"({limit / MB:.1f} MB), as on AWS where a synchronous Lambda request is capped at 6 MB. "
        f"Upload large images in three steps: POST {UPLOAD_URL_PATH} for an upload URL and an "
        f"upload_id, PUT the image bytes to that URL, then register the image with "
        f'POST {API_PREFIX}/training-image/ and {{"upload_id": ...}}.'
    )


_FRONT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kestrel</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;
line-height:1.5}}
code{{background:#f3f3f3;padding:.1rem .3rem}}</style></head>
<body><h1>Kestrel</h1>
<p>Trainable image recognition, compatible with the recognition v2 API.</p>
<ul><li><a href="{docs}/">API reference</a> (interactive)</li>
<li>API base: <code>{api}/</code>, with the header <code>Authorization: Token &lt;key&gt;</code></li>
<li>Create a token: <code>kestrel token create --email you@example.com</code></li></ul>
</body></html>
"""


#: The console: static files served at "/" as CloudFront serves them on AWS (web/ in the repository).
WEB_DIR = Path(__file__).resolve().parents[3] / "web"
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",  # ES modules load only with a JavaScript type
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}


def static_file(web_dir: Path, path: str) -> Path | None:
    """The file under ``web_dir`` that a URL path names ("/" is index.html), or None.

    Never a file outside ``web_dir`` (no "..", no symlink out) and never a hidden one."""
    relative = path.lstrip("/") or "index.html"
    parts = relative.split("/")
    if any(not part or part.startswith(".") or "\\" in part or "\x00" in part for part in parts):
        return None
    root = web_dir.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _static_response(environ: Mapping[str, Any], file: Path) -> Response:
    data = file.read_bytes()
    etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
    headers = [
        ("Content-Type", _STATIC_TYPES.get(file.suffix.lower(), "application/octet-stream")),
        ("ETag", etag),
        # No build step, so file names carry no content hash: browsers revalidate (a cheap 304).
        ("Cache-Control", "no-cache"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    if etag in str(environ.get("HTTP_IF_NONE_MATCH") or ""):
        return status_line(304), headers, b""
    return status_line(200), [*headers, ("Content-Length", str(len(data)))], data


def _sniff_content_type(data: bytes, key: str) -> str:
    signatures = (
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"BM", "image/bmp"),
        (b"II*\x00", "image/tiff"),
        (b"MM\x00*", "image/tiff"),
    )
    for magic, media in signatures:
        if data.startswith(magic):
            return media
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    suffixes = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".json": "application/json"}
    for suffix, media in suffixes.items():
        if key.lower().endswith(suffix):
            return media
    return "application/octet-stream"


class Gateway:
    """The WSGI application. Thread-safe: waitress calls it from its worker threads."""

    def __init__(
        self,
        ports: Ports,
        routes: Sequence[Route] | None = None,
        authorizer: Authorizer | None = None,
        unauthorized: type[Exception] | None = None,
    ) -> None:
        self.ports = ports
        # Longest prefix first, so "/recognition/v2/classify" wins over "/".
        self.routes = sorted(
            routes if routes is not None else default_routes(),
            key=lambda route: len(route.prefix.rstrip("/")),
            reverse=True,
        )
        self._authorizer = authorizer
        self._unauthorized = unauthorized
        self.max_request_bytes = ports.settings.limits.max_request_bytes

    def authorizer(self) -> tuple[Authorizer, type[Exception]]:
        if self._authorizer is None or self._unauthorized is None:
            default, unauthorized = _default_authorizer()
            self._authorizer = self._authorizer or default
            self._unauthorized = self._unauthorized or unauthorized
        return self._authorizer, self._unauthorized

    def warm_up(self) -> None:
        """Import every handler now instead of on its first request (``kestrel serve`` does this)."""
        self.authorizer()
        for route in self.routes:
            route.handler()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = request_path(environ)
        try:
            status, headers, body = self.respond(environ, method, path)
        except Exception:
            # The traceback goes to the server log only: it can name files, keys and data.
            logger.exception("%s %s failed", method, path)
            status, headers, body = _json(500, {"detail": "internal error"})
        elapsed_ms = (time.perf_counter() - started) * 1000
        # Path only: query strings can hold signatures, and headers hold tokens.
        logger.info("%s %s %s %.1fms", method, path, status.split(" ", 1)[0], elapsed_ms)
        start_response(status, headers)
        # HEAD: same headers (Content-Length included), no body; waitress leaves that to the app.
        return [b""] if method == "HEAD" else [body]

    def respond(self, environ: Mapping[str, Any], method: str, path: str) -> Response:
        if path.startswith(BLOB_ROUTE) and isinstance(self.ports.blobs, FolderBlobStore):
            return self._blob(environ, method, path[len(BLOB_ROUTE) :], self.ports.blobs)
        if method in ("GET", "HEAD") and not is_api_path(path):
            console_file = static_file(WEB_DIR, path)
            if console_file is not None:
                return _static_response(environ, console_file)
        if path == "/" and method in ("GET", "HEAD"):  # no console in web/: a page of links instead
            page = _FRONT_PAGE.format(docs=DOCS_PATH, api=API_PREFIX).encode()
            return (
                status_line(200),
                [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(page)))],
                page,
            )

        length = _content_length(environ)
        if length is not None and length > self.max_request_bytes:
            # Refused on the declared length alone: the body is never read.
            return _json(413, {"detail": too_large_detail(length, self.max_request_bytes)})
        body = _read_body(environ, length)
        event = event_from_wsgi(environ, body)
        request_id = event["requestContext"]["requestId"]

        # Public only if both spellings of the path are: a percent-encoded path must not slip
        # past the authorizer when the handler decodes it differently.
        if not (is_public(method, path) and is_public(method, raw_path(environ))):
            authorize, unauthorized = self.authorizer()
            try:
                policy = authorize(authorizer_event(event))
            except unauthorized as error:
                detail = str(getattr(error, "detail", "Unauthorized"))
                return _json(401, {"detail": detail}, [("WWW-Authenticate", "Token"), ("x-amzn-RequestId", request_id)])
            event["requestContext"]["authorizer"] = {
                **policy.get("context", {}),
                "principalId": policy["principalId"],
            }

        route = next((route for route in self.routes if route.matches(path)), None)
        if route is None:
            return _json(404, {"detail": f"No function serves {path}"})
        context = LocalLambdaContext(
            function_name=route.function_name,
            memory_limit_in_mb=route.memory_mb,
            invoked_function_arn=f"arn:aws:lambda:local:000000000000:function:{route.function_name}",
            aws_request_id=str(uuid.uuid4()),
        )
        result = route.handler()(event, context)
        try:
            status, headers, data = wsgi_response(result)
        except MalformedResponse as error:
            # API Gateway answers 502 when a Lambda returns something that is not a proxy response.
            logger.error("%s %s: %s returned a malformed response: %s", method, path, route.function_name, error)
            return _json(502, {"detail": "internal error: the handler's response was malformed"})
        if len(data) > LAMBDA_RESPONSE_BYTES:
            logger.warning("%s %s: response of %d bytes is over Lambda's 6 MB limit", method, path, len(data))
        if not any(name.lower() == "x-amzn-requestid" for name, _ in headers):
            headers.append(("x-amzn-RequestId", request_id))
        return status, headers, data

    # --- signed blob URLs: what S3 presigned URLs do on AWS ---

    def _blob(self, environ: Mapping[str, Any], method: str, key: str, store: FolderBlobStore) -> Response:
        query = decoded_query(environ)
        expires, sig, max_bytes = query.get("expires", ""), query.get("sig", ""), query.get("max_bytes", "0")
        if method not in ("GET", "PUT"):
            return _json(
                405,
                {"detail": f"{method} is not allowed on blob URLs; use GET or PUT"},
                [("Allow", "GET, PUT")],
            )
        if not key or not store.signer.verify(method, key, expires, sig, max_bytes):
            return _json(403, {"detail": "This URL's signature is invalid or has expired; ask the API for a new URL"})
        if method == "GET":
            try:
                data = store.get(key)
            except BlobNotFound:
                return _json(404, {"detail": "Nothing is stored at this URL (it may have been deleted)"})
            headers = [
                ("Content-Type", _sniff_content_type(data, key)),
                ("Content-Length", str(len(data))),
                ("Cache-Control", "private, max-age=300"),
                ("X-Content-Type-Options", "nosniff"),
            ]
            return status_line(200), headers, data

        limit = int(max_bytes or "0") or self.ports.settings.limits.max_image_bytes
        length = _content_length(environ)
        if length is None:
            return _json(411, {"detail": "Send the upload with a Content-Length header"})
        if length > limit:
            return _json(413, {"detail": f"The upload is {length} bytes; this URL accepts at most {limit} bytes"})
        data = _read_body(environ, length)
        store.put(key, data, str(environ.get("CONTENT_TYPE") or "application/octet-stream"))
        # S3 answers a PUT with the MD5 of the bytes as its ETag; clients may check it.
        return (
            status_line(200),
            [("ETag", f'"{hashlib.md5(data).hexdigest()}"'), ("Content-Length", "0")],
            b"",
        )


def _content_length(environ: Mapping[str, Any]) -> int | None:
    raw = str(environ.get("CONTENT_LENGTH") or "").strip()
    return int(raw) if raw.isdigit() else None


def _read_body(environ: Mapping[str, Any], length: int | None) -> bytes:
    if not length:
        return b""
    stream = environ["wsgi.input"]
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(remaining, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _json_error_channel(limit: int) -> type[HTTPChannel]:
    """A waitress channel whose own errors (malformed request, body over its hard cap) are JSON too."""

    class JsonErrorTask(ErrorTask):
        def execute(self) -> None:
            error = self.request.error
            code, reason = error.code, error.reason
            if code == 413:
                detail = too_large_detail(None, limit)
            elif code == 501:
                # waitress's only 501: a Transfer-Encoding other than chunked. The request is what
                # is wrong, and a 4xx says so (as API Gateway answers it).
                code, reason = 400, "Bad Request"
                detail = (
                    "the request's Transfer-Encoding is not supported: send the body with a Content-Length "
                    "header or with 'Transfer-Encoding: chunked'"
                )
            else:
                detail = f"{reason}: {error.body}"
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

    def __init__(self, gateway: Gateway, host: str, port: int, threads: int) -> None:
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
            self._stopped.set()
            return
        # The asyncore map belongs to the loop thread; close it from there.
        self._trigger.pull_trigger(lambda: wasyncore.close_all(self._map, ignore_all=True))
        if self._loop_thread is not threading.current_thread():  # e.g. not from a signal handler
            self._stopped.wait(timeout)


def make_server(
    ports: Ports,
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int = 8,
    *,
    routes: Sequence[Route] | None = None,
    authorizer: Authorizer | None = None,
    unauthorized: type[Exception] | None = None,
) -> GatewayServer:
    """A bound (not yet serving) gateway on ``host:port`` (port 0: any free port, see ``.url``).

    Installs ``ports`` process-wide (``set_ports``), because the handlers, as on Lambda, read
    them from the composition root: with several gateways in one process, the last one made wins.

    ``routes`` / ``authorizer`` replace the deployed handlers (tests inject stubs); ``unauthorized``
    is the exception type the authorizer raises to refuse a request."""
    # No CloudWatch reads EMF metric lines locally; they would only bury the request log.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
    set_ports(ports)
    gateway = Gateway(ports, routes, authorizer, unauthorized)
    return GatewayServer(gateway, host, port, threads)
