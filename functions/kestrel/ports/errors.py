"""Failures any port may raise that are nobody's fault: the service behind it is busy."""

from __future__ import annotations

#: What a caller should wait before trying again, unless the adapter knows better.
RETRY_AFTER_SECONDS = 5


class Unavailable(Exception):
    """A service behind a port kept refusing (throttling, 5xx) or did not answer (connection or
    read timeouts) through all of the adapter's retries with back-off.

    Nothing in the request was wrong: the same request may succeed a few seconds later. The API
    answers it with 503 and ``Retry-After``; queue and event handlers let it fail, so that SQS or
    Lambda delivers the message or event again."""

    def __init__(
        self, what: str, reason: str, retry_after: int = RETRY_AFTER_SECONDS, *, detail: str | None = None
    ) -> None:
        super().__init__(f"{what} is unavailable: {reason}")
        self.what = what  # "the database", "the file store", ...: safe to show to a user
        self.reason = reason  # the service's own words: for the log, not for the user
        self.retry_after = retry_after
        #: The sentence for the user (no internals); a caller that knows more may say more.
        self.detail = detail or f"{what} is busy or unreachable right now; retry in {retry_after} seconds"
