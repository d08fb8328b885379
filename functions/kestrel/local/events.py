"""WSGI request <-> API Gateway REST (v1) proxy event, the way API Gateway builds them.

The local gateway hands handlers exactly the event shape they get on AWS, so the handler code
cannot tell the two runtimes apart. Where API Gateway's behaviour matters to the handlers:

- ``path`` keeps the percent-encoding the client sent; ``pathParameters`` and query string
  values are decoded.
- ``queryStringParameters`` / ``multiValueQueryStringParameters`` are None without a query, and
  ``body`` is None without a body.
- Bodies of binary media types (multipart, images, anything not text/JSON/urlencoded) arrive
  base64-encoded with ``isBase64Encoded=True``.
- ``Host`` keeps its port and ``X-Forwarded-Proto`` / ``X-Forwarded-Port`` / ``X-Forwarded-For``
  are set, so a handler can rebuild public URLs (pagination links, signed blob URLs).

WSGI servers fold repeated request headers into one comma-joined value, so each header has a
single entry in ``multiValueHeaders``.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

#: The deployed API routes everything through one greedy proxy resource.
PROXY_RESOURCE = "/{proxy+}"
STAGE = "local"
ACCOUNT_ID = "000000000000"
API_ID = "kestrel-local"

# Media types API Gateway passes as text; everything else counts as binary (see module doc).
_TEXT_TYPES = frozenset(
    {"application/json", "application/x-www-form-urlencoded", "application/xml", "application/javascript"}
)
# Response headers a WSGI application may not set (PEP 3333); the server manages them.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class MalformedResponse(ValueError):
    """A handler returned something that is not a valid proxy response (API Gateway: 502)."""


def is_text_media_type(content_type: str | None) -> bool:
    """True when API Gateway would hand this body to the handler as text rather than base64."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml"))


def _wsgi_str(value: str) -> str:
    """PEP 3333 hands over bytes as latin-1 strings; recover the UTF-8 text the client sent."""
    return value.encode("latin-1").decode("utf-8", "replace")


def _header_name(environ_key: str) -> str:
    # HTTP_X_FORWARDED_FOR -> X-Forwarded-For (WSGI lost the client's casing; this is the common one).
    return "-".join(part.capitalize() for part in environ_key.split("_"))


def request_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """The request's headers, as the client sent them (names in Title-Case)."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[_header_name(key[5:])] = _wsgi_str(str(value))
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[_header_name(key)] = str(environ[key])
    return headers


def raw_path(environ: Mapping[str, Any]) -> str:
    """The path exactly as requested (still percent-encoded), without the query string."""
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if uri:
        path = str(uri).split("?", 1)[0]
        if "://" in path:  # absolute-form request target: keep only the path
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        return "/" + path.lstrip("/")
    return quote(request_path(environ), safe="/:@!$&'()*+,;=-._~")


def request_path(environ: Mapping[str, Any]) -> str:
    """The decoded path (what routing and ``is_public`` look at)."""
    return _wsgi_str(str(environ.get("SCRIPT_NAME", ""))) + _wsgi_str(str(environ.get("PATH_INFO", ""))) or "/"


def _query(query_string: str) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    if not query_string:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        single[name] = value  # API Gateway keeps the last value
        multi.setdefault(name, []).append(value)
    return (single, multi) if multi else (None, None)


def _split_host(host: str) -> tuple[str, str | None]:
    """("example.com:8000") -> ("example.com", "8000"); IPv6 literals keep their brackets."""
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[: end + 1], host[end + 1 :]
        return name, rest[1:] if rest.startswith(":") else None
    name, sep, port = host.rpartition(":")
    return (name, port) if sep and port.isdigit() else (host, None)


def event_from_wsgi(environ: Mapping[str, Any], body: bytes) -> dict[str, Any]:
    """The API Gateway REST proxy event for this request (``body``: the bytes already read)."""
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    path = raw_path(environ)
    decoded_path = request_path(environ)
    scheme = str(environ.get("wsgi.url_scheme", "http"))
    source_ip = str(environ.get("REMOTE_ADDR", "127.0.0.1"))

    headers = request_headers(environ)
    host = headers.get("Host") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    headers["Host"] = host
    domain_name, host_port = _split_host(host)
    # Like API Gateway: it terminates the connection, so it states the scheme and port the client
    # used (the Host header's port when there is one) and appends the client to X-Forwarded-For.
    headers["X-Forwarded-Proto"] = scheme
    headers["X-Forwarded-Port"] = host_port or _DEFAULT_PORTS.get(scheme, str(environ.get("SERVER_PORT", "")))
    forwarded = headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{forwarded}, {source_ip}" if forwarded else source_ip
    headers.setdefault("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}")

    single_query, multi_query = _query(str(environ.get("QUERY_STRING", "")))

    if not body:
        event_body: str | None = None
        is_base64 = False
    elif is_text_media_type(headers.get("Content-Type")):
        try:
            event_body, is_base64 = body.decode("utf-8"), False
        except UnicodeDecodeError:  # declared text but is not: pass it on unharmed
            event_body, is_base64 = base64.b64encode(body).decode("ascii"), True
    else:
        event_body, is_base64 = base64.b64encode(body).decode("ascii"), True

    now = time.time()
    proxy = decoded_path.lstrip("/")
    return {
        "resource": PROXY_RESOURCE if proxy else "/",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": {"proxy": proxy} if proxy else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "resourceId": "proxy",
            "resourcePath": PROXY_RESOURCE if proxy else "/",
            "httpMethod": method,
            "extendedRequestId": uuid.uuid4().hex[:16],
            "requestId": str(uuid.uuid4()),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "path": path,
            "protocol": str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")),
            "stage": STAGE,
            "domainPrefix": domain_name.split(".", 1)[0],
            "domainName": domain_name,
            "identity": {
                "sourceIp": source_ip,
                "userAgent": headers.get("User-Agent"),
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "user": None,
                "userArn": None,
            },
            "authorizer": None,
        },
        "body": event_body,
        "isBase64Encoded": is_base64,
    }


def method_arn(event: Mapping[str, Any]) -> str:
    """The ARN API Gateway gives a REQUEST authorizer for this request."""
    context = event["requestContext"]
    return (
        f"arn:aws:execute-api:local:{context['accountId']}:{context['apiId']}/{context['stage']}/"
        f"{event['httpMethod']}{event['path']}"
    )


def authorizer_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event a REQUEST-type Lambda authorizer receives for this proxy event."""
    keys = (
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "requestContext",
    )
    return {"type": "REQUEST", "methodArn": method_arn(event), **{key: event[key] for key in keys}}


def status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


def _merged_headers(response: Mapping[str, Any]) -> list[tuple[str, str]]:
    """headers + multiValueHeaders, merged as API Gateway does (a pair given twice counts once)."""
    merged: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()

    def add(name: Any, values: Iterable[Any]) -> None:
        for value in values:
            pair = (str(name), str(value))
            if (pair[0].lower(), pair[1]) not in seen and pair[0].lower() not in _HOP_BY_HOP:
                seen.add((pair[0].lower(), pair[1]))
                merged.append(pair)

    multi = response.get("multiValueHeaders") or {}
    single = response.get("headers") or {}
    if not isinstance(multi, Mapping) or not isinstance(single, Mapping):
        raise MalformedResponse("headers and multiValueHeaders must be objects")
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedResponse(f"multiValueHeaders[{name!r}] must be a list")
        add(name, values)
    for name, value in single.items():
        add(name, [value])
    return merged


def wsgi_response(response: Any) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) for a Lambda proxy response dict; raises MalformedResponse."""
    if not isinstance(response, Mapping):
        raise MalformedResponse(f"a proxy response is a dict, not {type(response).__name__}")
    code = response.get("statusCode")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if not isinstance(code, int) or not 100 <= code <= 599:
        raise MalformedResponse(f"statusCode must be an HTTP status, not {code!r}")
    headers = _merged_headers(response)
    body = response.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        raise MalformedResponse(f"body must be a string, not {type(body).__name__}")
    elif response.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except ValueError as error:
            raise MalformedResponse(f"isBase64Encoded is set but the body is not base64: {error}") from None
    else:
        data = body.encode("utf-8")
    headers.append(("Content-Length", str(len(data))))
    return status_line(code), headers, data


def decoded_query(environ: Mapping[str, Any]) -> dict[str, str]:
    """The query string as a dict (last value wins), for the gateway's own routes."""
    return dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))


def with_public_origin(event: dict[str, Any], public_url: str) -> dict[str, Any]:
    """The event as API Gateway builds it behind its own domain: ``Host``, the forwarded scheme and
    port (what handlers build ``next`` links and signed URLs from) are the configured public URL's,
    whatever ``Host`` the client sent."""
    parts = urlsplit(public_url)
    scheme = parts.scheme or "http"
    host = parts.netloc
    domain_name, host_port = _split_host(host)
    headers = event["headers"]
    headers["Host"] = host
    headers["X-Forwarded-Proto"] = scheme
    headers["X-Forwarded-Port"] = host_port or _DEFAULT_PORTS.get(scheme, "")
    event["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
    event["requestContext"]["domainName"] = domain_name
    event["requestContext"]["domainPrefix"] = domain_name.split(".", 1)[0]
    return event
