"""The one failure every part of the fetcher reports."""

from __future__ import annotations


class FetchRefused(Exception):
    """The URL was not fetched; ``detail`` says why, ``status`` is the code for the record's _status."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def refuse_url(message: str) -> FetchRefused:
    return FetchRefused(message, 400)
