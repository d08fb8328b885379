"""``normalise_body``: every way a body arrives (JSON, urlencoded, multipart; plain or base64 as
API Gateway sends binary bodies) becomes the JSON the route models validate."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from kestrel.api.body import normalise_body, raw_body
from kestrel.domain.errors import InvalidInput

BOUNDARY = "----kestrel-test-boundary"
# Bytes that are no text at all: a file field must arrive byte for byte.
FILE_BYTES = bytes(range(256)) + b"\r\n--not-a-boundary\r\n" + b"\x00\xff" * 50


def _event(
    body: str | bytes | None, content_type: str | None, *, b64: bool = False, method: str = "POST"
) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode() if b64 else body.decode("latin-1")
    elif b64 and body is not None:
        body = base64.b64encode(body.encode()).decode()
    headers = {"Host": "example.com"}
    if content_type is not None:
        headers["content-type"] = content_type  # any case: API Gateway keeps the client's
    return {
        "httpMethod": method,
        "path": "/api/v2/x/",
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "body": body,
        "isBase64Encoded": b64,
        "requestContext": {"requestId": "r-1"},
    }


def _json_of(event: dict[str, Any]) -> Any:
    assert event["headers"]["Content-Type"] == "application/json"
    assert "content-type" not in event["headers"]
    assert event["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert "content-type" not in event["multiValueHeaders"]
    assert event["isBase64Encoded"] is False
    return json.loads(event["body"])


def _multipart(*parts: tuple[str, str | bytes, str | None]) -> bytes:
    """A multipart/form-data body of (name, value, filename or None) parts."""
    out = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + (value if isinstance(value, bytes) else value.encode()) + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


# -- JSON ------------------------------------------------------------------------------------


def test_a_json_body_passes_through_untouched() -> None:
    event = _event('{"name": "cats", "labels": ["a"]}', "application/json")
    assert normalise_body(event) is event
    assert event["body"] == '{"name": "cats", "labels": ["a"]}'


def test_invalid_json_is_left_to_the_routes_validation() -> None:
    # Not refused here: the route's model answers it with its own 400 ("the body is not valid JSON").
    event = _event('{"name": ', "application/json")
    assert normalise_body(event)["body"] == '{"name": '


def test_a_base64_json_body_is_decoded() -> None:
    text = '{"name": "café ✓"}'
    normalised = normalise_body(_event(text, "application/json", b64=True))
    assert _json_of(normalised) == {"name": "café ✓"}
    assert normalised["requestContext"] == {"requestId": "r-1"}  # the rest of the event is kept
    assert normalised["headers"]["Host"] == "example.com"


def test_a_base64_body_without_content_type_is_taken_as_json() -> None:
    assert _json_of(normalise_body(_event('{"a": 1}', None, b64=True))) == {"a": 1}


def test_a_body_that_is_not_base64_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        normalise_body(_event("not base64 at all!", "application/json", b64=False) | {"isBase64Encoded": True})
    assert refused.value.detail == "the request body is not valid base64"


# -- no body ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("body", [None, "", "   ", "null"])
def test_no_body_on_a_write_is_an_empty_object(method: str, body: str | None) -> None:
    assert _json_of(normalise_body(_event(body, None, method=method))) == {}


def test_no_body_on_a_read_stays_empty() -> None:
    normalised = normalise_body(_event(None, None, method="GET"))
    assert normalised["body"] == ""
    assert normalised["headers"]["Content-Type"] == "application/json"


# -- urlencoded forms ------------------------------------------------------------------------


def test_an_urlencoded_form_becomes_json() -> None:
    body = "name=Cats+%26+dogs&description=&type=multi_class"
    assert _json_of(normalise_body(_event(body, "application/x-www-form-urlencoded"))) == {
        "name": "Cats & dogs",
        "description": "",
        "type": "multi_class",
    }


def test_repeated_form_fields_become_lists() -> None:
    body = "labels=a&labels=b&labels=c&name=x"
    assert _json_of(normalise_body(_event(body, "application/x-www-form-urlencoded; charset=utf-8"))) == {
        "labels": ["a", "b", "c"],
        "name": "x",
    }


def test_structured_form_fields_are_read_as_json() -> None:
    body = urlencode(
        [
            ("meta_data", json.dumps({"camera": {"iso": 100}})),
            ("labels", '["a", "b"]'),
            ("broken", "{not json"),
            ("text", "plain"),
        ]
    )
    assert _json_of(normalise_body(_event(body, "application/x-www-form-urlencoded"))) == {
        "meta_data": {"camera": {"iso": 100}},
        "labels": ["a", "b"],
        "broken": "{not json",  # not JSON after all: kept as the text it is
        "text": "plain",
    }


def test_a_base64_urlencoded_form_is_decoded_first() -> None:
    normalised = normalise_body(
        _event("name=caf%C3%A9&labels=a&labels=b", "application/x-www-form-urlencoded", b64=True)
    )
    assert _json_of(normalised) == {"name": "café", "labels": ["a", "b"]}


def test_an_empty_urlencoded_form_is_an_empty_object() -> None:
    assert _json_of(normalise_body(_event("", "application/x-www-form-urlencoded"))) == {}


# -- multipart forms -------------------------------------------------------------------------


def test_a_multipart_file_field_becomes_its_bytes_in_base64() -> None:
    body = _multipart(("img_path", FILE_BYTES, "photo.jpg"), ("test_image", "true", None))
    fields = _json_of(normalise_body(_event(body, MULTIPART, b64=True)))
    assert base64.b64decode(fields["img_path"]) == FILE_BYTES
    assert fields["test_image"] == "true"


def test_multipart_text_fields_repeated_and_structured() -> None:
    body = _multipart(
        ("labels", "a", None),
        ("labels", "b", None),
        ("meta_data", '{"k": [1, 2]}', None),
        ("name", "Chats é", None),
    )
    assert _json_of(normalise_body(_event(body, MULTIPART, b64=True))) == {
        "labels": ["a", "b"],
        "meta_data": {"k": [1, 2]},
        "name": "Chats é",
    }


def test_a_multipart_body_not_base64_encoded_is_read_too() -> None:
    body = _multipart(("name", "x", None))
    assert _json_of(normalise_body(_event(body, MULTIPART))) == {"name": "x"}


def test_a_multipart_content_type_without_boundary_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        normalise_body(_event(_multipart(("name", "x", None)), "multipart/form-data", b64=True))
    assert refused.value.detail == "multipart body without a boundary in its Content-Type header"


def test_a_broken_multipart_body_is_refused_saying_so() -> None:
    body = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\nno end'.encode()
    with pytest.raises(InvalidInput, match=r"^the multipart body cannot be read: "):
        normalise_body(_event(body, MULTIPART, b64=True))


# -- raw_body --------------------------------------------------------------------------------


def test_raw_body_gives_the_bytes_either_way() -> None:
    assert raw_body(_event("héllo", "text/plain")) == "héllo".encode()
    assert raw_body(_event(FILE_BYTES, "application/octet-stream", b64=True)) == FILE_BYTES
    assert raw_body(_event(None, None)) == b""


def test_an_empty_multipart_body_is_refused_and_one_without_parts_is_empty() -> None:
    with pytest.raises(InvalidInput, match=r"^the multipart body cannot be read: "):
        normalise_body(_event(None, MULTIPART))
    assert _json_of(normalise_body(_event(f"--{BOUNDARY}--\r\n", MULTIPART))) == {}
