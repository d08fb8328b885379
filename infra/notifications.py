"""Notifications: the SES identity Kestrel mails from, and its configuration set."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ses as ses
from constructs import Construct

from infra.settings import Settings


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        self.sender = settings.ses_sender
        # Bounces and complaints put the address on the account's suppression list, so Kestrel
        # stops mailing it (this is what keeps an SES account in good standing); TLS is required.
        self.configuration_set = ses.ConfigurationSet(
            self,
            "ConfigurationSet",
            reputation_metrics=True,
            sending_enabled=True,
            suppression_reasons=ses.SuppressionReasons.BOUNCES_AND_COMPLAINTS,
            tls_policy=ses.ConfigurationSetTlsPolicy.REQUIRE,
        )
        # An address identity: SES mails a verification link to it on deploy. (When the whole
        # domain is already verified in the account, SES sends from any of its addresses.)
        # ``sesIdentity=existing``: the address (or its domain) is verified already, e.g. by an
        # earlier deploy or by another stage with the same sender; creating it again would fail
        # the deploy with "already exists". The stack then leaves the identity alone, and the
        # configuration set still applies: the mailer names it on every SendEmail.
        self.identity: ses.EmailIdentity | None = None
        if settings.create_ses_identity:
            self.identity = ses.EmailIdentity(
                self,
                "Sender",
                identity=ses.Identity.email(settings.ses_sender),
                configuration_set=self.configuration_set,
            )
            # Account-level state other stages may rely on: kept when the stack is deleted or
            # switched to ``existing`` (which would otherwise un-verify the sender).
            self.identity.apply_removal_policy(RemovalPolicy.RETAIN)

    def grant_send(self, grantee: iam.IGrantable) -> None:
        """SendEmail from the configured sender only. The identity resource is the account's
        identities (identity/*) because in the SES sandbox SES also authorises against the
        *recipient's* identity; the From address is pinned by the ses:FromAddress condition."""
        stack = Stack.of(self)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ses:SendEmail"],  # SesMailer calls SendEmail only
                resources=[
                    stack.format_arn(service="ses", resource="identity", resource_name="*"),
                    stack.format_arn(
                        service="ses",
                        resource="configuration-set",
                        resource_name=self.configuration_set.configuration_set_name,
                    ),
                ],
                conditions={"StringEquals": {"ses:FromAddress": self.sender}},
            )
        )
