"""The mail port on AWS: SES SendEmail."""

from __future__ import annotations

from typing import Any

from kestrel.adapters.aws_clients import LazyClient
from kestrel.config import MailSettings
from kestrel.ports.mail import Mail


class SesMailer(LazyClient):
    service = "ses"

    def __init__(self, settings: MailSettings, client: Any = None) -> None:
        self.settings = settings
        self._given = client

    def send(self, mail: Mail) -> None:
        request: dict[str, Any] = {
            "Source": self.settings.sender,
            "Destination": {"ToAddresses": [mail.to]},
            "Message": {
                "Subject": {"Data": mail.subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": mail.body, "Charset": "UTF-8"}},
            },
        }
        if self.settings.ses_configuration_set:
            request["ConfigurationSetName"] = self.settings.ses_configuration_set
        self._client.send_email(**request)
