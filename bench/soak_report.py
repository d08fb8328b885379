"""Writes the figures of the last ``make soak`` run (build/soak/*.json, see tests/soak.py) into
docs/benchmarks.md, below the marker that ``make bench`` keeps.

Run by ``make soak`` after the suites, whether they passed or not: failures are figures too."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

from bench.common import machine
from bench.report import REPORT, SOAK_MARKER
from tests.soak import FIGURES_DIR

SUITES = {
    "fuzz": "schemathesis over every operation; malformed and bit-flipped images into upload and classify",
    "security": "tenancy on every route, cursors, signed URLs, tokens, logs; SSRF spellings",
    "crash": "SIGKILL of `kestrel serve` during uploads, label changes and training, then restart and check",
}

#: What soak runs have found so far: each defect fixed, with a test kept in the short profile.
FOUND = [
    "an unsupported `Transfer-Encoding` answered 501 from waitress: now 400 with a detail "
    "(`tests/local/test_gateway.py::test_an_unsupported_transfer_encoding_is_400_json`)",
    "a NUL byte in `upload_id` reached a file name and answered 500: `upload_id` must now be a UUID "
    "(`tests/api/test_bad_input.py`, `tests/unit/adapters/test_folder_blobs.py`)",
]


def soak_section() -> list[str]:
    figures = {path.stem: json.loads(path.read_text()) for path in sorted(FIGURES_DIR.glob("*.json"))}
    session = figures.pop("session", {})
    minutes = session.get("seconds", 0) / 60
    lines = [
        SOAK_MARKER,
        "## Soak",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} on {machine()} with `make soak` "
        f"({minutes:.0f} min): the fuzz, security and crash suites at full length. `make test` runs the",
        "same tests in a short profile.",
        "",
        "| suite | what | tests passed | tests failed | figures |",
        "|---|---|---|---|---|",
    ]
    for suite, what in SUITES.items():
        values = dict(figures.get(suite, {}))
        passed, failed = values.pop("tests_passed", 0), values.pop("tests_failed", 0)
        shown = ", ".join(f"{name.replace('_', ' ')}: {value:,}" for name, value in sorted(values.items()))
        lines.append(f"| {suite} | {what} | {passed} | {failed} | {shown or '-'} |")
    return [
        *lines,
        "",
        "Found by earlier soak runs, each fixed with its test kept:",
        "",
        *[f"- {f}" for f in FOUND],
        "",
    ]


def main() -> int:
    if not FIGURES_DIR.is_dir():
        print(f"no soak figures in {FIGURES_DIR}: run `make soak`", file=sys.stderr)
        return 1
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n\n"
    kept = text[: text.index(SOAK_MARKER)] if SOAK_MARKER in text else text.rstrip("\n") + "\n\n"
    REPORT.write_text(kept + "\n".join(soak_section()) + "\n")
    print(f"wrote the soak figures into {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
