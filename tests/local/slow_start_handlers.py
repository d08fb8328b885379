"""A handler module whose import takes long (like a model load), to stop a gateway mid-start."""

from __future__ import annotations

import time
from typing import Any

time.sleep(60)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": "{}"}
