"""HMAC-signed, expiring URLs for the local gateway's blob routes (S3 presigns its own)."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode

#: Where the local gateway serves signed blob downloads and uploads.
BLOB_ROUTE = "/blobs/"


class UrlSigner:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _signature(self, method: str, key: str, expires: int, max_bytes: int) -> str:
        message = f"{method}\n{key}\n{expires}\n{max_bytes}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, method: str, key: str, expires_in: int, base_url: str, max_bytes: int = 0) -> str:
        expires = int(time.time()) + expires_in
        query = {"expires": str(expires), "sig": self._signature(method, key, expires, max_bytes)}
        if max_bytes:
            query["max_bytes"] = str(max_bytes)
        return f"{base_url.rstrip('/')}{BLOB_ROUTE}{quote(key)}?{urlencode(query)}"

    def verify(self, method: str, key: str, expires: str, sig: str, max_bytes: str = "0") -> bool:
        """True when the signature matches and the URL has not expired (constant-time compare)."""
        try:
            expires_at, limit = int(expires), int(max_bytes or "0")
        except ValueError:
            return False
        if expires_at < time.time():
            return False
        return hmac.compare_digest(self._signature(method, key, expires_at, limit), sig)
