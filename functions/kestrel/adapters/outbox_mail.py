"""Local mail: every message is written to ``<data-dir>/outbox/`` as an .eml file, and also sent
through an SMTP server when one is configured."""

from __future__ import annotations

import os
import smtplib
import tempfile
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from kestrel.config import MailSettings
from kestrel.ports.mail import Mail


def to_message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain="kestrel.local")
    message.set_content(mail.body)
    return message


class OutboxMailer:
    def __init__(self, outbox: Path, settings: MailSettings) -> None:
        self.outbox = outbox
        self.settings = settings
        outbox.mkdir(parents=True, exist_ok=True)

    def send(self, mail: Mail) -> None:
        message = to_message(mail, self.settings.sender)
        name = f"{formatdate(usegmt=True).replace(' ', '_').replace(',', '')}-{uuid.uuid4().hex[:8]}.eml"
        fd, tmp = tempfile.mkstemp(dir=self.outbox, prefix=".tmp-")
        with os.fdopen(fd, "wb") as out:
            out.write(bytes(message))
        os.replace(tmp, self.outbox / name)
        if self.settings.smtp_host:
            with smtplib.SMTP(self.settings.smtp_host, self.settings.smtp_port, timeout=30) as smtp:
                if self.settings.smtp_user:
                    smtp.starttls()
                    smtp.login(self.settings.smtp_user, self.settings.smtp_password)
                smtp.send_message(message)
