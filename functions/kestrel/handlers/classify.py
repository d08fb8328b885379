"""Lambda entry point for ``POST /recognition/v2/classify``: its own function, with more memory,
onnxruntime, and the backbone session and head cache that live as long as the execution environment."""

from __future__ import annotations

from kestrel.handlers.http import http_entry_point

lambda_handler = http_entry_point("classify")
