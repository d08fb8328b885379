"""WSGI <-> API Gateway proxy event conversion, without a server."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest

from kestrel.local.events import (
    MalformedResponse,
    authorizer_event,
    event_from_wsgi,
    is_text_media_type,
    wsgi_response,
)


def environ(path: str = "/recognition/v2/task/", query: str = "", **extra: Any) -> dict[str, Any]:
    base = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REQUEST_URI": path + (f"?{query}" if query else ""),
        "SERVER_NAME": "0.0.0.0",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "HTTP_HOST": "kestrel.example:8000",
    }
    return {**base, **extra}


def test_host_and_forwarding_headers_let_a_handler_rebuild_public_urls() -> None:
    event = event_from_wsgi(environ(HTTP_X_FORWARDED_FOR="203.0.113.9", HTTP_USER_AGENT="curl/8"), b"")
    assert event["headers"]["Host"] == "kestrel.example:8000"
    assert event["requestContext"]["domainName"] == "kestrel.example"
    assert event["headers"]["X-Forwarded-Proto"] == "http" and event["headers"]["X-Forwarded-Port"] == "8000"
    assert event["headers"]["X-Forwarded-For"] == "203.0.113.9, 10.0.0.7"
    assert event["requestContext"]["identity"] == {
        **event["requestContext"]["identity"],
        "sourceIp": "10.0.0.7",
        "userAgent": "curl/8",
    }
    # Without a port in Host, the scheme's default port is what the client used.
    https = event_from_wsgi(environ(HTTP_HOST="kestrel.example", **{"wsgi.url_scheme": "https"}), b"")
    assert https["headers"]["X-Forwarded-Port"] == "443" and https["headers"]["X-Forwarded-Proto"] == "https"
    ipv6 = event_from_wsgi(environ(HTTP_HOST="[::1]:9000"), b"")
    assert ipv6["requestContext"]["domainName"] == "[::1]" and ipv6["headers"]["X-Forwarded-Port"] == "9000"


def test_paths_keep_their_encoding_and_parameters_are_decoded() -> None:
    event = event_from_wsgi(
        environ("/recognition/v2/label/a b/", "search=caf%C3%A9&x", REQUEST_URI="/recognition/v2/label/a%20b/?q"),
        b"",
    )
    assert event["path"] == "/recognition/v2/label/a%20b/"
    assert event["requestContext"]["path"] == "/recognition/v2/label/a%20b/"
    assert event["pathParameters"] == {"proxy": "recognition/v2/label/a b/"}
    assert event["queryStringParameters"] == {"search": "café", "x": ""}
    root = event_from_wsgi(environ("/", REQUEST_URI="/"), b"")
    assert root["resource"] == "/" and root["pathParameters"] is None


def test_headers_come_in_title_case_single_and_multi_valued() -> None:
    event = event_from_wsgi(
        environ(HTTP_AUTHORIZATION="Token abc", CONTENT_TYPE="application/json", CONTENT_LENGTH="2"), b"{}"
    )
    assert event["headers"]["Authorization"] == "Token abc"
    assert event["headers"]["Content-Type"] == "application/json"
    assert event["multiValueHeaders"]["Authorization"] == ["Token abc"]
    assert event["body"] == "{}" and event["isBase64Encoded"] is False


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("application/problem+json", True),
        ("application/x-www-form-urlencoded", True),
        ("text/plain", True),
        ("multipart/form-data; boundary=x", False),
        ("image/jpeg", False),
        ("application/octet-stream", False),
        (None, False),
    ],
)
def test_binary_media_types(content_type: str | None, text: bool) -> None:
    assert is_text_media_type(content_type) is text


def test_binary_bodies_are_base64_and_undecodable_text_is_too() -> None:
    jpeg = b"\xff\xd8\xff\xe0data"
    event = event_from_wsgi(environ(CONTENT_TYPE="image/jpeg"), jpeg)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == jpeg
    lying = event_from_wsgi(environ(CONTENT_TYPE="application/json"), jpeg)
    assert lying["isBase64Encoded"] is True and base64.b64decode(lying["body"]) == jpeg


def test_the_authorizer_event_is_a_request_authorizer_event() -> None:
    event = event_from_wsgi(environ(REQUEST_METHOD="POST"), b"")
    auth = authorizer_event(event)
    assert auth["type"] == "REQUEST" and auth["headers"] == event["headers"]
    assert auth["methodArn"].endswith("/local/POST/recognition/v2/task/")


def test_responses_merge_headers_and_decode_bodies() -> None:
    status, headers, body = wsgi_response(
        {
            "statusCode": 200,
            "headers": {"Content-Type": "text/plain", "Set-Cookie": "a=1", "Connection": "close"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": "héllo",
        }
    )
    assert status == "200 OK" and body == "héllo".encode()
    assert headers.count(("Set-Cookie", "a=1")) == 1 and ("Set-Cookie", "b=2") in headers
    assert ("Content-Length", str(len(body))) in headers
    assert all(name.lower() != "connection" for name, _ in headers)  # hop-by-hop: the server's business

    assert wsgi_response({"statusCode": 204})[2] == b""
    binary = wsgi_response({"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True})
    assert binary[2] == b"\x00\x01"


@pytest.mark.parametrize(
    "response",
    [
        None,
        [],
        {"body": "x"},
        {"statusCode": 999},
        {"statusCode": 200, "body": b"bytes"},
        {"statusCode": 200, "body": "not base64!", "isBase64Encoded": True},
        {"statusCode": 200, "multiValueHeaders": {"X": "not a list"}},
    ],
)
def test_malformed_responses_are_reported(response: Any) -> None:
    with pytest.raises(MalformedResponse):
        wsgi_response(response)
