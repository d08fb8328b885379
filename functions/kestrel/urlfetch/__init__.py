"""Outbound network access on behalf of users (fetching ``_url`` images), guarded against SSRF."""

from kestrel.urlfetch.fetch import FetchPolicy, FetchRefused, check_address, fetch_image_bytes

__all__ = ["FetchPolicy", "FetchRefused", "check_address", "fetch_image_bytes"]
