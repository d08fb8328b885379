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


class Mailer(Protocol):
    """SES on AWS; .eml files in the outbox folder (and SMTP when configured) locally."""

    def send(self, mail: Mail) -> None: ...
