"""The mail port on AWS: SES SendEmail.

SES's permanent refusals become ``MailRefused`` with a reason that says what to do; throttling
and outages have already been retried by botocore (see ``aws_clients``) and arrive as the ports'
``Unavailable``, which the flow may try again a few times."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from kestrel.adapters.aws_clients import LazyClient
from kestrel.config import MailSettings
from kestrel.ports.mail import Mail, MailRefused

_SANDBOX_HINT = (
    "in the SES sandbox every recipient address must be verified too; verify it, or ask AWS for "
    "production access (see docs/operations.md)"
)

#: SendEmail's permanent errors (SES v1 codes): what each means for the owner and the operator.
REFUSALS = {
    "MessageRejected": "SES rejected the mail ({message}); " + _SANDBOX_HINT,
    "MailFromDomainNotVerifiedException": (
        "SES refused the sender's MAIL FROM domain, which is not verified; verify it in SES"
    ),
    "ConfigurationSetDoesNotExist": "the SES configuration set Kestrel is told to use does not exist",
    "ConfigurationSetSendingPausedException": "sending is paused for Kestrel's SES configuration set",
    "AccountSendingPausedException": "sending is paused for the AWS account's SES (see the SES console)",
}


def refusal(error: ClientError) -> MailRefused | None:
    """The ``MailRefused`` a ClientError from SendEmail stands for, or None if it is not one."""
    details = error.response.get("Error") or {}
    code = str(details.get("Code") or "")
    template = REFUSALS.get(code)
    if template is None:
        return None
    message = str(details.get("Message") or "no reason given").strip().rstrip(".")
    return MailRefused(template.format(message=message), code)


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
        try:
            self._client.send_email(**request)
        except ClientError as error:
            refused = refusal(error)
            if refused is not None:
                raise refused from error
            raise
