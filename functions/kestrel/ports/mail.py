"""The mail port: what the training flow tells an owner (started, finished, failed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kestrel.domain.free_form import one_line


@dataclass(frozen=True)
class Mail:
    """One mail; ``to`` and ``subject`` are header values, so they are made single lines here
    (whatever a stored name holds, no adapter can be handed a header that breaks)."""

    to: str
    subject: str
    body: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "to", one_line(self.to, 254))
        object.__setattr__(self, "subject", one_line(self.subject, 200))


class MailRefused(Exception):
    """The mail service refused this mail for good (an unverified sender or recipient, the SES
    sandbox, sending paused): sending it again would be refused again, so nobody retries it.

    ``reason`` says what to do about it, for the owner and the operator (no internals)."""

    def __init__(self, reason: str, code: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # the service's error code, for the log and the metric


class Mailer(Protocol):
    """SES on AWS; .eml files in the outbox folder (and SMTP when configured) locally.

    ``send`` raises ``MailRefused`` for a permanent refusal; anything else it raises (including
    the ports' ``Unavailable``) is taken as transient and retried a bounded number of times."""

    def send(self, mail: Mail) -> None: ...
