"""How long the fuzz, security and crash suites run, and what the long run records.

``make test`` runs a short profile; ``KESTREL_SOAK=1`` (``make soak``) the long one. Under the long
profile each suite adds its figures (requests sent, inputs tried, kills survived, failures) to
``build/soak/<suite>.json``; ``python -m bench.soak_report`` then writes them into
docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

SOAK = os.environ.get("KESTREL_SOAK", "").strip() not in ("", "0", "false", "no")
FIGURES_DIR = Path(__file__).resolve().parents[1] / "build" / "soak"
_LOCK = threading.Lock()


def examples(short: int, soak: int) -> int:
    """The number of generated inputs (or repetitions) per test for the current profile."""
    return soak if SOAK else short


def record(suite: str, **figures: int) -> None:
    """Adds ``figures`` to the suite's totals for this soak run; does nothing in the short profile.

    Totals add up across tests, so each test reports only what it did itself."""
    if not SOAK:
        return
    with _LOCK:
        FIGURES_DIR.mkdir(parents=True, exist_ok=True)
        path = FIGURES_DIR / f"{suite}.json"
        totals: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
        for name, value in figures.items():
            totals[name] = totals.get(name, 0) + value
        path.write_text(json.dumps(totals, indent=1, sort_keys=True) + "\n")
