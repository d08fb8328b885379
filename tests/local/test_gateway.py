"""The local gateway over real HTTP: auth, limits, signed blob URLs, errors, concurrency, restarts."""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

from kestrel.cli.main import main
from kestrel.composition import Ports, build_ports
from kestrel.config import Limits
from kestrel.local.gateway import Gateway, Route, too_large_detail
from kestrel.local.routes import default_routes
from kestrel.store.accounts import ensure_owner
from tests.conftest import OWNER_A, RunningServer, local_settings, running_server

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60


def respond(payload: Any, status: int = 200) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(payload),
    }


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A stub Lambda that answers with what it was given."""
    return respond(
        {
            "event": event,
            "context": {
                "function_name": context.function_name,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "invoked_function_arn": context.invoked_function_arn,
                "aws_request_id": context.aws_request_id,
                "remaining_ms": context.get_remaining_time_in_millis(),
            },
        }
    )


@pytest.fixture
def ports(tmp_path: Path) -> Ports:
    return build_ports(local_settings(tmp_path / "data"))


@pytest.fixture
def serve(ports: Ports) -> Iterator[Callable[..., RunningServer]]:
    """Start a gateway on ``ports`` whose every route goes to ``handler`` (a stub Lambda)."""
    with_servers: list[Any] = []

    def start(handler: Handler = echo, *, routes: list[Route] | None = None, **options: Any) -> RunningServer:
        context = running_server(ports, "local", routes=routes or [Route.of("/", "stub-api", handler)], **options)
        with_servers.append(context)
        return context.__enter__()

    yield start
    for context in reversed(with_servers):
        context.__exit__(None, None, None)


def echoed(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


# --- authentication ---


def test_no_token_or_a_wrong_one_is_401_json_and_the_server_keeps_serving(
    serve: Callable[..., RunningServer], ports: Ports
) -> None:
    called: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        called.append(event)
        return echo(event, context)

    server = serve(handler)
    missing = server.request("GET", "recognition/v2/task/", token=None)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Token"
    assert missing.headers["Content-Type"] == "application/json"
    assert "Authorization: Token" in missing.json()["detail"]

    wrong = server.request("GET", "recognition/v2/task/", token="0" * 40)
    assert wrong.status_code == 401 and "Invalid token" in wrong.json()["detail"]
    malformed = server.request("GET", "recognition/v2/task/", headers={"Authorization": "Bearer abc"}, token=None)
    assert malformed.status_code == 401 and "Token <your key>" in malformed.json()["detail"]
    assert called == []  # the handler never saw a refused request

    owner_id = ensure_owner(ports.items, OWNER_A).id
    event = echoed(server.request("GET", "recognition/v2/task/"))["event"]
    assert event["requestContext"]["authorizer"] == {"owner_id": owner_id, "principalId": owner_id}


def test_public_paths_need_no_token(serve: Callable[..., RunningServer]) -> None:
    server = serve()
    for path in ("recognition/v2/docs/", "recognition/v2/docs", "recognition/v2/openapi.json"):
        event = echoed(server.request("GET", path, token=None))["event"]
        assert event["requestContext"]["authorizer"] is None
    # CORS preflights are public too.
    assert server.request("OPTIONS", "recognition/v2/task/", token=None).status_code == 200


def test_a_percent_encoded_path_does_not_slip_past_the_authorizer(
    serve: Callable[..., RunningServer],
) -> None:
    server = serve()
    # Decoded it is the public docs path, but the handler routes on the raw path. (http.client,
    # because requests would normalise %64 to "d" before sending.)
    connection = http.client.HTTPConnection("127.0.0.1", server.server.port, timeout=10)
    try:
        connection.request("GET", "/recognition/v2/%64ocs/")
        response = connection.getresponse()
        assert response.status == 401 and "detail" in json.loads(response.read())
    finally:
        connection.close()


def test_the_real_api_serves_its_docs_without_a_token(local_server: RunningServer) -> None:
    docs = local_server.request("GET", "recognition/v2/docs/", token=None)
    assert docs.status_code == 200 and "text/html" in docs.headers["Content-Type"]
    spec = local_server.request("GET", "recognition/v2/openapi.json", token=None)
    assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.")
    assert local_server.request("GET", "recognition/v2/task/", token=None).status_code == 401
    assert local_server.request("GET", "recognition/v2/task/").json()["count"] == 0


# --- the event the handler receives, and the response it gives ---


def test_the_handler_gets_an_api_gateway_proxy_event_and_a_lambda_context(
    serve: Callable[..., RunningServer],
) -> None:
    server = serve()
    answer = echoed(server.request("GET", "recognition/v2/label/?task=1&search=a&search=b"))
    event, context = answer["event"], answer["context"]
    port = str(server.server.port)
    assert event["resource"] == "/{proxy+}" and event["httpMethod"] == "GET"
    assert event["path"] == "/recognition/v2/label/"
    assert event["pathParameters"] == {"proxy": "recognition/v2/label/"}
    assert event["queryStringParameters"] == {"task": "1", "search": "b"}
    assert event["multiValueQueryStringParameters"] == {"task": ["1"], "search": ["a", "b"]}
    headers = event["headers"]
    assert headers["Host"] == f"localhost:{port}"
    assert headers["X-Forwarded-Proto"] == "http" and headers["X-Forwarded-Port"] == port
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert event["multiValueHeaders"]["Host"] == [f"localhost:{port}"]
    request_context = event["requestContext"]
    assert request_context["domainName"] == "localhost" and request_context["stage"] == "local"
    assert request_context["path"] == "/recognition/v2/label/"
    assert request_context["identity"]["sourceIp"] == "127.0.0.1"
    assert len(request_context["requestId"]) == 36
    assert event["body"] is None and event["isBase64Encoded"] is False
    assert context["function_name"] == "stub-api" and context["memory_limit_in_mb"] == 1024
    assert context["invoked_function_arn"].endswith(":function:stub-api")
    assert len(context["aws_request_id"]) == 36 and 0 < context["remaining_ms"] <= 29_000

    plain = echoed(server.request("GET", "recognition/v2/task"))["event"]
    assert plain["queryStringParameters"] is None and plain["multiValueQueryStringParameters"] is None


def test_the_gateway_s_time_limit_is_the_one_the_handler_s_context_counts_down(
    serve: Callable[..., RunningServer],
) -> None:
    # timeout_seconds was once stored and never used: every handler got API Gateway's 29 s.
    server = serve(timeout_seconds=3)
    context = echoed(server.request("GET", "recognition/v2/label/"))["context"]
    assert 0 < context["remaining_ms"] <= 3_000


def test_text_bodies_arrive_as_text_and_binary_ones_as_base64(serve: Callable[..., RunningServer]) -> None:
    server = serve()
    as_json = echoed(server.request("POST", "recognition/v2/task/", json={"name": "é"}))["event"]
    assert as_json["isBase64Encoded"] is False and json.loads(as_json["body"]) == {"name": "é"}
    form = echoed(server.request("POST", "recognition/v2/label/", data={"name": "cat"}))["event"]
    assert form["isBase64Encoded"] is False and form["body"] == "name=cat"

    multipart = echoed(server.request("POST", "recognition/v2/training-image/", files={"img_path": ("a.jpg", JPEG)}))
    event = multipart["event"]
    assert event["isBase64Encoded"] is True and event["headers"]["Content-Type"].startswith("multipart/form-data")
    assert JPEG in base64.b64decode(event["body"])
    raw = echoed(server.request("POST", "recognition/v2/x/", data=JPEG, headers={"Content-Type": "image/jpeg"}))
    assert raw["event"]["isBase64Encoded"] is True and base64.b64decode(raw["event"]["body"]) == JPEG


def test_binary_responses_and_repeated_headers_reach_the_client(serve: Callable[..., RunningServer]) -> None:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "image/jpeg", "X-One": "1"},
            "multiValueHeaders": {"X-Many": ["a", "b"]},
            "body": base64.b64encode(JPEG).decode(),
            "isBase64Encoded": True,
        }

    response = serve(handler).request("GET", "recognition/v2/thing/")
    assert response.status_code == 201 and response.content == JPEG
    assert response.headers["X-One"] == "1" and response.headers["X-Many"] == "a, b"
    assert response.headers["x-amzn-RequestId"]


def function_answering(server: RunningServer) -> Callable[[str], str]:
    """The name of the function that answers a POST to a path (the stubs echo their context)."""

    def function(path: str) -> str:
        return str(echoed(server.request("POST", path, json={}))["context"]["function_name"])

    return function


def test_routes_go_to_their_function_by_prefix(serve: Callable[..., RunningServer]) -> None:
    routes = [
        Route.of("/recognition/v2/classify", "stub-classify", echo, 2048),
        Route.of("/", "stub-api", echo),
    ]
    function = function_answering(serve(routes=routes))
    assert function("recognition/v2/classify") == "stub-classify"
    assert function("recognition/v2/classify/") == "stub-classify"
    assert function("recognition/v2/classifier/") == "stub-api"
    assert function("recognition/v2/task/") == "stub-api"


def test_similarity_search_goes_to_the_classify_function(serve: Callable[..., RunningServer]) -> None:
    [classify] = [route for route in default_routes() if route.function_name == "kestrel-classify"]
    routes = [replace(classify, handler=echo), Route.of("/", "stub-api", echo)]
    function = function_answering(serve(routes=routes))
    # One pool of workers for both paths (the model cache is shared), as on AWS one Lambda.
    assert function("recognition/v2/task/3f2c/similar/") == "kestrel-classify"
    assert function("recognition/v2/task/3f2c/similar") == "kestrel-classify"
    assert function("recognition/v2/classify") == "kestrel-classify"
    assert function("recognition/v2/task/3f2c/") == "stub-api"
    assert function("recognition/v2/task/3f2c/train/") == "stub-api"
    assert function("recognition/v2/task/similar/") == "stub-api"  # no task id: not the search
    assert function("recognition/v2/task/3f2c/similarity/") == "stub-api"


# --- limits ---


def test_a_body_over_the_limit_is_413_with_the_upload_flow(tmp_path: Path) -> None:
    ports = build_ports(local_settings(tmp_path / "data", Limits(max_request_bytes=1000, max_image_bytes=2000)))
    called: list[bool] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        called.append(True)
        return respond({})

    with running_server(ports, "local", routes=[Route.of("/", "stub", handler)]) as server:
        response = server.request("POST", "recognition/v2/training-image/", data=b"x" * 5000)
        assert response.status_code == 413 and response.headers["Content-Type"] == "application/json"
        detail = response.json()["detail"]
        assert "5000 bytes" in detail and "1000 bytes" in detail
        assert "/recognition/v2/training-image/upload-url/" in detail and "upload_id" in detail
        assert called == []
        # At the limit it passes.
        assert server.request("POST", "recognition/v2/training-image/", data=b"x" * 1000).status_code == 200

        # Far over even waitress's hard cap (4 x the largest limit): refused on the headers alone, as JSON.
        with socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as sock:
            sock.sendall(
                b"POST /recognition/v2/training-image/ HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
            )
            reply = _read_http_reply(sock)
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413") and b"application/json" in head
        assert "upload-url" in json.loads(body)["detail"]
        assert server.request("GET", "recognition/v2/task/").status_code == 200


def test_an_unsupported_transfer_encoding_is_400_json(local_server: RunningServer) -> None:
    # Found by the soak run of schemathesis: waitress answered these with its own 501.
    for encoding in (b"gzip", b"!`'swK<5>j\"K", b"chunked, gzip"):
        with socket.create_connection(("127.0.0.1", local_server.server.port), timeout=10) as sock:
            sock.sendall(
                b"POST /recognition/v2/training-image/ HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: " + encoding + b"\r\nContent-Length: 2\r\n\r\n{}"
            )
            reply = _read_http_reply(sock)
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), (encoding, head)
        assert "Transfer-Encoding" in json.loads(body)["detail"]
    assert local_server.request("GET", "recognition/v2/task/").status_code == 200


def _read_http_reply(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            None,
        )
        if sep and length is not None and len(body) >= length:
            return data


def test_an_oversized_body_is_refused_without_being_read(ports: Ports) -> None:
    class Unreadable(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("the gateway read a body it was going to refuse")

    gateway = Gateway(ports, routes=[Route.of("/", "stub", echo)])
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/recognition/v2/training-image/",
        "CONTENT_LENGTH": str(ports.settings.limits.max_request_bytes + 1),
        "CONTENT_TYPE": "application/json",
        "wsgi.input": Unreadable(),
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "localhost:8000",
    }
    statuses: list[str] = []
    body = b"".join(gateway(environ, lambda status, headers: statuses.append(status)))
    assert statuses == ["413 Request Entity Too Large"]
    assert json.loads(body)["detail"] == too_large_detail(
        ports.settings.limits.max_request_bytes + 1, ports.settings.limits.max_request_bytes
    )


# --- signed blob URLs ---


def test_signed_blob_urls_get_and_put(serve: Callable[..., RunningServer], ports: Ports) -> None:
    server = serve()
    blobs = ports.blobs
    put_url = blobs.upload_url("uploads/o1/u1", 60, server.url, max_bytes=100)
    assert put_url.startswith(server.url + "blobs/uploads/o1/u1?")
    stored = requests.put(put_url, data=JPEG, timeout=10)
    assert stored.status_code == 200 and stored.headers["ETag"].startswith('"')
    assert blobs.get("uploads/o1/u1") == JPEG

    fetched = requests.get(blobs.download_url("uploads/o1/u1", 60, server.url), timeout=10)
    assert fetched.status_code == 200 and fetched.content == JPEG
    assert fetched.headers["Content-Type"] == "image/jpeg"

    blobs.put("images/o1/i1/thumb.jpg", b"not really a jpeg")
    by_suffix = requests.get(blobs.download_url("images/o1/i1/thumb.jpg", 60, server.url), timeout=10)
    assert by_suffix.headers["Content-Type"] == "image/jpeg"
    missing = requests.get(blobs.download_url("images/o1/none", 60, server.url), timeout=10)
    assert missing.status_code == 404 and "detail" in missing.json()


def test_bad_blob_urls_are_refused(serve: Callable[..., RunningServer], ports: Ports) -> None:
    server = serve()
    blobs = ports.blobs
    blobs.put("images/o1/i1/original", JPEG)
    good = blobs.download_url("images/o1/i1/original", 60, server.url)

    tampered = good.replace("sig=", "sig=0")
    other_key = good.replace("i1/original", "i2/original")
    expired = blobs.download_url("images/o1/i1/original", -1, server.url)
    unsigned = server.url + "blobs/images/o1/i1/original"
    for url in (tampered, other_key, expired, unsigned):
        refused = requests.get(url, timeout=10)
        assert refused.status_code == 403, url
        assert "expired" in refused.json()["detail"]
    # A download URL does not allow an upload, and vice versa.
    assert requests.put(good, data=b"x", timeout=10).status_code == 403
    put_url = blobs.upload_url("uploads/o1/u2", 60, server.url, max_bytes=10)
    assert requests.get(put_url, timeout=10).status_code == 403
    # A larger max_bytes than was signed does not verify.
    assert (
        requests.put(put_url.replace("max_bytes=10", "max_bytes=1000"), data=b"x" * 50, timeout=10).status_code == 403
    )

    too_big = requests.put(put_url, data=b"x" * 11, timeout=10)
    assert too_big.status_code == 413 and "at most 10 bytes" in too_big.json()["detail"]
    assert not blobs.exists("uploads/o1/u2")
    assert requests.put(put_url, data=b"x" * 10, timeout=10).status_code == 200
    assert blobs.get("images/o1/i1/original") == JPEG  # nothing above touched it


# --- errors ---


def test_a_crashing_handler_is_a_500_without_the_traceback(
    serve: Callable[..., RunningServer], caplog: pytest.LogCaptureFixture
) -> None:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event["path"].endswith("/boom/"):
            raise RuntimeError("secret internal state /srv/kestrel/x.py")
        return respond({"ok": True})

    server = serve(handler)
    with caplog.at_level(logging.INFO, logger="kestrel.gateway"):
        crashed = server.request("GET", "recognition/v2/boom/")
    assert crashed.status_code == 500 and crashed.json() == {"detail": "internal error"}
    assert "Traceback" not in crashed.text and "secret" not in crashed.text
    assert "secret internal state" in caplog.text and "Traceback" in caplog.text  # the log keeps it
    assert server.request("GET", "recognition/v2/fine/").json() == {"ok": True}


def test_a_malformed_handler_response_is_a_502(serve: Callable[..., RunningServer]) -> None:
    server = serve(lambda event, context: {"body": "no status code"})
    response = server.request("GET", "recognition/v2/task/")
    assert response.status_code == 502 and "internal error" in response.json()["detail"]


def test_one_log_line_per_request_without_tokens(
    serve: Callable[..., RunningServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = serve()
    with caplog.at_level(logging.INFO, logger="kestrel.gateway"):
        server.request("GET", "recognition/v2/task/?page=2")
        server.request("GET", "recognition/v2/task/", token="f" * 40)
    lines = [record.getMessage() for record in caplog.records if record.name == "kestrel.gateway"]
    assert len(lines) == 2
    assert lines[0].startswith("GET /recognition/v2/task/ 200 ") and lines[0].endswith("ms")
    assert lines[1].startswith("GET /recognition/v2/task/ 401 ")
    assert server.token not in caplog.text and "f" * 40 not in caplog.text and "Authorization" not in caplog.text


# --- front page, concurrency, restarts ---


def test_the_front_page_links_to_the_docs(serve: Callable[..., RunningServer]) -> None:
    server = serve()
    page = requests.get(server.url, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'href="/recognition/v2/docs/"' in page.text
    assert page.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert page.headers["X-Frame-Options"] == "DENY"
    head = requests.head(server.url, timeout=10)
    assert head.status_code == 200 and head.content == b""


def test_in_process_handlers_take_turns_like_one_execution_environment(serve: Callable[..., RunningServer]) -> None:
    # Powertools keeps the current request in class attributes: in one process, handlers must not
    # overlap. (Requests in parallel are the worker pool's job: tests/local/test_pool.py.)
    running: list[int] = []
    overlaps: list[int] = []
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            running.append(1)
            overlaps.append(len(running))
        time.sleep(0.05)
        with lock:
            running.pop()
        return respond({"ok": True})

    server = serve(handler)
    results: list[int] = []

    def call() -> None:
        headers = {"Authorization": f"Token {server.token}"}
        results.append(requests.get(server.url + "recognition/v2/slow/", timeout=30, headers=headers).status_code)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 4
    assert overlaps == [1, 1, 1, 1]


def test_tokens_and_data_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["token", "create", "--email", "keeper@example.com", "--data-dir", str(data_dir)]) == 0
    token = out.getvalue().splitlines()[-1]

    owners: list[str] = []
    for _ in range(2):
        ports = build_ports(local_settings(data_dir))
        with running_server(ports, "local", routes=[Route.of("/", "stub", echo)]) as server:
            event = echoed(server.request("GET", "recognition/v2/task/", token=token))["event"]
            owners.append(event["requestContext"]["authorizer"]["owner_id"])
            ports.blobs.put("kept", b"bytes")
    assert owners[0] == owners[1]
    assert build_ports(local_settings(data_dir)).blobs.get("kept") == b"bytes"


def test_close_stops_a_server_with_open_connections(ports: Ports) -> None:
    with running_server(ports, "local", routes=[Route.of("/", "stub", echo)]) as server:
        # A keep-alive connection stays open in the session; close() must not wait for it.
        assert server.request("GET", "recognition/v2/task/").status_code == 200
        url = server.url
        started = time.perf_counter()
    assert time.perf_counter() - started < 5
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)


# --- the public URL, and the data folder's permissions ---


def test_links_and_signed_urls_use_the_public_url_not_the_host_header(ports: Ports) -> None:
    public = "https://kestrel.example.com/"
    with running_server(ports, "local", public_url=public) as server:
        for name in ("one", "two"):
            assert server.request("POST", "recognition/v2/label/", json={"name": name}).status_code == 201
        spoofed = {"Host": "evil.example.net", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example.net"}
        page = server.request("GET", "recognition/v2/label/?page_size=1", headers=spoofed).json()
        assert page["next"].startswith("https://kestrel.example.com/recognition/v2/label/")
        image = base64.b64encode(_png()).decode()
        uploaded = server.request("POST", "recognition/v2/training-image/", json={"base64": image}, headers=spoofed)
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["img_path"].startswith("https://kestrel.example.com/")
        assert "evil" not in uploaded.text and "evil" not in json.dumps(page)


def test_without_a_public_url_links_follow_the_host_the_client_used(ports: Ports) -> None:
    with running_server(ports, "local") as server:
        for name in ("one", "two"):
            server.request("POST", "recognition/v2/label/", json={"name": name})
        page = server.request("GET", "recognition/v2/label/?page_size=1").json()
        assert page["next"].startswith(server.url + "recognition/v2/label/")


@pytest.mark.parametrize("url", ["ftp://x.example/", "https://x.example/kestrel/", "https://u:p@x.example/", "x"])
def test_serve_refuses_a_public_url_that_is_not_an_origin(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--public-url", url, "--port", "0"]) == 2
    assert "--public-url" in capsys.readouterr().err


def test_a_new_data_folder_and_its_database_are_for_their_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    build_ports(local_settings(data_dir))
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert (data_dir / "kestrel.db").stat().st_mode & 0o777 == 0o600
    assert (data_dir / "secret.key").stat().st_mode & 0o777 == 0o600


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()
