"""The mail port: what the training flow tells an owner (started, finished, failed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    """SES on AWS; .eml files in the outbox folder (and SMTP when configured) locally."""

    def send(self, mail: Mail) -> None: ...
