"""Rules for the free-form values people send: names are single lines, meta_data is bounded.

Checked before anything is stored (by the request models and again by the store), so a stored
value can never break a listing, a mail header or a later request. Each check returns the
problem as a sentence for the user, or None; callers raise their own error kind with it."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

#: meta_data: at most this many levels of objects/lists (the object itself is level 1) ...
MAX_META_DEPTH = 8
#: ... and at most this many bytes as compact JSON (UTF-8).
MAX_META_BYTES = 16 * 1024
#: Any JSON request body: deeper than this is refused before a model sees it.
MAX_BODY_DEPTH = 32

# Cc: C0/C1 controls (CR, LF, NUL, ESC, ...); Zl/Zp: the Unicode line and paragraph separators.
_LINE_BREAKING = ("Cc", "Zl", "Zp")
_TEXT_ALLOWED = {"\n", "\r", "\t"}  # multi-line text (descriptions) may keep these


def _first_control(value: str, allowed: set[str]) -> tuple[int, str] | None:
    for position, char in enumerate(value):
        if char not in allowed and unicodedata.category(char) in _LINE_BREAKING:
            return position, char
    return None


def single_line_problem(value: str) -> str | None:
    """Why ``value`` cannot be a name (a control character or line break in it), or None."""
    found = _first_control(value, set())
    if found is None:
        return None
    position, char = found
    return (
        f"must be a single line without control characters; it has U+{ord(char):04X} at position "
        f"{position + 1}: remove line breaks, tabs and other control characters"
    )


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be a multi-line text (a control character other than CR/LF/tab), or None."""
    found = _first_control(value, _TEXT_ALLOWED)
    if found is None:
        return None
    position, char = found
    return f"has the control character U+{ord(char):04X} at position {position + 1}; remove it"


def nesting_depth(value: Any, stop_after: int) -> int:
    """Levels of dicts/lists in ``value`` (a scalar is 0), counting no further than ``stop_after + 1``.

    Iterative, so a value nested 100,000 deep cannot exhaust Python's stack here."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > stop_after:
            return deepest
        # Only containers are kept: a flat list of millions of numbers costs no extra memory.
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def json_text_depth(text: str, stop_after: int) -> int:
    """How deep JSON text nests, read from the text before any parser recurses into it; the
    answer is exact up to ``stop_after`` and only says "deeper" beyond it.

    Costs one pass over the text plus a step per bracket outside strings: a flat list of
    millions of numbers is as cheap as any other body."""
    openers = text.count("[") + text.count("{")
    if openers <= stop_after:
        return openers  # too few brackets to go deeper: an upper bound is enough
    depth = deepest = 0
    for match in _BRACKET.finditer(_JSON_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > stop_after:
                return deepest
        else:
            depth -= 1
    return deepest


def meta_data_problem(value: Any) -> str | None:
    """Why ``value`` cannot be an image's meta_data (too deep, too big, not JSON), or None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return "must be a JSON object"
    too_deep = (
        f"is nested more than {MAX_META_DEPTH} levels deep; at most {MAX_META_DEPTH} levels of "
        "objects and lists are kept: flatten it"
    )
    try:  # the size first: C speed on any value, and it bounds the depth walk below
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except RecursionError:
        return too_deep
    except (TypeError, ValueError) as error:
        return f"is not plain JSON ({error})"
    if size > MAX_META_BYTES:
        return (
            f"is {size:,} bytes as JSON, over the limit of {MAX_META_BYTES:,} bytes; keep large data "
            "elsewhere and store a reference to it"
        )
    return too_deep if nesting_depth(value, MAX_META_DEPTH) > MAX_META_DEPTH else None


def one_line(value: str, limit: int = 200) -> str:
    """``value`` made safe for a mail header or a log line: every control character and line
    break becomes a space, runs of spaces shrink to one, and it is cut to ``limit`` characters.
    For values stored before names were checked, and for anything else that reaches a header."""
    cleaned = "".join(" " if unicodedata.category(char) in _LINE_BREAKING else char for char in value)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
