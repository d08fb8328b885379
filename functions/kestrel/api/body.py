"""Request bodies as JSON, whatever way they came: JSON, urlencoded form or multipart form.

Ximilar's API takes all three (``curl -F name=...`` works), so the api handler rewrites form
bodies into the JSON the route models validate. A multipart file field becomes its bytes in
base64, which is what a JSON upload carries."""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any
from urllib.parse import parse_qsl

from multipart import MultipartError, MultipartParser, parse_options_header

from kestrel.domain.errors import InvalidInput
from kestrel.domain.free_form import MAX_BODY_DEPTH, json_text_depth


def _header(event: dict[str, Any], name: str) -> str:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value or "")
    return ""


def _too_deep(where: str) -> InvalidInput:
    return InvalidInput(
        f"{where} is nested more than {MAX_BODY_DEPTH} levels deep; send flatter JSON "
        "(meta_data keeps at most 8 levels)"
    )


def check_depth(text: str, where: str) -> None:
    """Refuse (400) JSON text nested deeper than any request needs, before anything parses it:
    Python's parser recurses, and 100,000 levels would end in a RecursionError (a 500)."""
    if json_text_depth(text, MAX_BODY_DEPTH) > MAX_BODY_DEPTH:
        raise _too_deep(where)


def parse_json(text: str, where: str) -> Any:
    check_depth(text, where)
    return json.loads(text)


def _form_value(name: str, value: str) -> Any:
    # Structured fields (meta_data, labels) arrive as JSON text inside a form.
    stripped = value.strip()
    if stripped[:1] in ("{", "["):
        try:
            return parse_json(stripped, f"form field '{name}'")
        except ValueError:
            return value
    return value


def _collect(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:  # repeated fields become lists, as in labels=a&labels=b
            previous = result[name]
            result[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            result[name] = value
    return result


def raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except (binascii.Error, ValueError):
            raise InvalidInput("the request body is not valid base64") from None
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def normalise_body(event: dict[str, Any]) -> dict[str, Any]:
    """The event with a JSON body (form bodies converted); JSON bodies pass through as text."""
    content_type, options = parse_options_header(_header(event, "content-type"))
    content_type = content_type.lower()
    if content_type == "application/x-www-form-urlencoded":
        text = raw_body(event).decode("utf-8", errors="replace")
        fields = _collect([(k, _form_value(k, v)) for k, v in parse_qsl(text, keep_blank_values=True)])
        return _with_json(event, fields)
    if content_type == "multipart/form-data":
        boundary = options.get("boundary")
        if not boundary:
            raise InvalidInput("multipart body without a boundary in its Content-Type header")
        data = raw_body(event)
        pairs: list[tuple[str, Any]] = []
        try:
            # Bodies are capped upstream (6 MB), so every part can stay in memory.
            parser = MultipartParser(
                io.BytesIO(data),
                boundary,
                content_length=len(data),
                spool_limit=len(data) + 1,
                memory_limit=len(data) + 1,
            )
            for part in parser:
                if part.filename is not None:
                    pairs.append((part.name, base64.b64encode(part.raw).decode("ascii")))
                else:
                    pairs.append((part.name, _form_value(part.name, part.value)))
        except MultipartError as error:
            raise InvalidInput(f"the multipart body cannot be read: {error}") from None
        return _with_json(event, _collect(pairs))
    if event.get("isBase64Encoded") and content_type in ("", "application/json", "text/plain"):
        return _checked_json(_with_json_text(event, raw_body(event).decode("utf-8", errors="replace")))
    if (event.get("body") or "").strip() in ("", "null"):
        # No body at all (the ximilar client posts None to train/): treat as an empty object.
        return _with_json_text(event, "{}" if event.get("httpMethod") in ("POST", "PUT", "PATCH") else "")
    return _checked_json(event)


def _checked_json(event: dict[str, Any]) -> dict[str, Any]:
    """The event unchanged, once its JSON body is known not to be a depth bomb. Invalid JSON
    passes on: the route's validation answers it with its own 400."""
    body = event.get("body")
    if isinstance(body, str):
        check_depth(body, "the JSON body")
    return event


def _with_json(event: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    return _with_json_text(event, json.dumps(fields))


def _with_json_text(event: dict[str, Any], text: str) -> dict[str, Any]:
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    headers["Content-Type"] = "application/json"
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
    multi["Content-Type"] = ["application/json"]
    return {**event, "headers": headers, "multiValueHeaders": multi, "body": text, "isBase64Encoded": False}
