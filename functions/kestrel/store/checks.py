"""The last check before a free-form value is written: whatever path it came by (API, CLI,
import), nothing stored may later break a listing, a mail header or a later request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kestrel.domain.errors import InvalidInput
from kestrel.domain.free_form import meta_data_problem, single_line_problem

_NAME_FIELDS = ("name", "output_name")


def check_names(fields: Mapping[str, Any]) -> None:
    """``name`` and ``output_name`` among ``fields`` are single lines."""
    for field in _NAME_FIELDS:
        value = fields.get(field)
        if isinstance(value, str) and (problem := single_line_problem(value)) is not None:
            raise InvalidInput(f"field '{field}' {problem}")


def check_meta_data(value: Any) -> None:
    problem = meta_data_problem(value)
    if problem is not None:
        raise InvalidInput(f"field 'meta_data' {problem}")
