"""How long the fuzz and security suites run: a short profile in ``make test``, a long one with
``KESTREL_SOAK=1`` (``make soak``)."""

from __future__ import annotations

import os

SOAK = os.environ.get("KESTREL_SOAK", "").strip() not in ("", "0", "false", "no")


def examples(short: int, soak: int) -> int:
    """The number of generated inputs per test for the current profile."""
    return soak if SOAK else short
