"""Failure reasons are read by people: what went wrong and what to do, never internals.

A reason may come from Kestrel's own training job (already a sentence for the owner), from the
training service (SageMaker's FailureReason: anything, up to a traceback) or from an exception.
What reaches ``failure_reason`` and the failure mail passes through :func:`for_people`; the raw
text goes to the log, with the job, by the caller."""

from __future__ import annotations

import re

from kestrel.domain.free_form import one_line
from kestrel.domain.training_rules import UNEXPECTED_FAILURE

#: Said when the raw reason is not fit to show: the details are in the log under the job's name.
UNEXPECTED = UNEXPECTED_FAILURE
MAX_REASON = 500

# Things a person cannot act on: tracebacks, source lines, storage keys and URIs, class names.
_INTERNALS = re.compile(
    r"Traceback \(most recent call last\)|\bFile \"|\bline \d+, in\b|s3://|\b(images|jobs|models|embeddings)/\S+/|"
    r"\b[A-Z][A-Za-z]*(Error|Exception|NotFound)\b|<[a-z_.]+ object at 0x"
)

_CLASS_PREFIX = re.compile(r"^[A-Z][A-Za-z]*(Error|Exception):\s*")


def for_people(raw: str) -> str:
    """``raw`` if it is a plain sentence without internals, else :data:`UNEXPECTED`; one line."""
    # A service's "CapacityError: Unable to provision ..." keeps its sentence, not its class name.
    text = _CLASS_PREFIX.sub("", one_line(raw, MAX_REASON))
    if not text or _INTERNALS.search(text):
        return UNEXPECTED
    return text
