"""The usage-key port: each owner's API key in the API's usage plan, which meters their requests.

On AWS an API key in API Gateway's usage plan carries the per-owner rate, burst and monthly quota;
the token authorizer returns the owner's key as ``usageIdentifierKey`` (the API's key source is
AUTHORIZER, so clients never see or send it). The local gateway has no usage plan: there is no
adapter for it, and ``Ports.usage_keys`` is None."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class UsageKey:
    key_id: str  # API Gateway's id of the key (for deleting it)
    value: str  # what the authorizer returns as usageIdentifierKey


class UsageKeys(Protocol):
    def create_key(self, owner_id: str) -> UsageKey:
        """A new enabled key for ``owner_id``, already in the usage plan (all or nothing)."""
        ...

    def delete_key(self, key_id: str) -> None:
        """Remove a key (and with it its place in the usage plan); a missing key is no error."""
        ...
