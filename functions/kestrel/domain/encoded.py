"""Image bytes sent as text: base64, with or without a ``data:image/...;base64,`` prefix."""

from __future__ import annotations

import base64
import binascii
import re

from kestrel.domain.errors import InvalidInput

_DATA_URL = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)


def decode_base64_image(text: str, field: str = "base64") -> bytes:
    """The bytes ``text`` encodes; ``field`` names it in the error."""
    payload = _DATA_URL.sub("", text.strip(), count=1)
    payload = re.sub(r"\s+", "", payload)
    try:
        return base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"field '{field}' is not valid base64 data") from None
