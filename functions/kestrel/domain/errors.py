"""Typed domain errors. The API maps each kind to one HTTP status in ``kestrel.api.errors``."""

from __future__ import annotations


class KestrelError(Exception):
    """Base of every error a user can cause; ``detail`` says what is wrong and how to fix it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(KestrelError):
    """The item does not exist, or belongs to someone else (never told apart)."""


class InvalidInput(KestrelError):
    """The request is well-formed but a value breaks a rule."""


class Conflict(KestrelError):
    """The request clashes with the current state (e.g. a duplicate, a version in use)."""


class TooLarge(KestrelError):
    """The payload is over a size limit."""


class Unauthenticated(KestrelError):
    """No valid API token."""


class NotImplementedYet(KestrelError):
    """A route of the API that this release does not serve yet."""
