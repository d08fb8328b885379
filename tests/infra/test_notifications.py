"""Notifications: the SES identity and configuration set, and who may send mail."""

from __future__ import annotations

from tests.infra.synth import Synth, require_node

require_node()

from tests.infra.template_tools import functions_by_handler, logical_id_of, role_of, role_statements  # noqa: E402

SENDERS = {"kestrel.handlers.launcher.lambda_handler", "kestrel.handlers.finisher.lambda_handler"}


def test_sender_identity_uses_the_configuration_set(dev: Synth) -> None:
    configuration_set = logical_id_of(dev, "NotificationsConfigurationSet", "AWS::SES::ConfigurationSet")
    dev.template.has_resource_properties(
        "AWS::SES::EmailIdentity",
        {
            "EmailIdentity": "kestrel@example.com",
            "ConfigurationSetAttributes": {"ConfigurationSetName": {"Ref": configuration_set}},
        },
    )


def test_configuration_set_requires_tls_and_suppresses_bounces(dev: Synth) -> None:
    dev.template.has_resource_properties(
        "AWS::SES::ConfigurationSet",
        {
            "DeliveryOptions": {"TlsPolicy": "REQUIRE"},
            "ReputationOptions": {"ReputationMetricsEnabled": True},
            "SendingOptions": {"SendingEnabled": True},
            "SuppressionOptions": {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]},
        },
    )


def test_only_the_training_flow_sends_mail_and_only_as_the_sender(dev: Synth) -> None:
    senders = set()
    for handler, (_, properties) in functions_by_handler(dev).items():
        statements = [
            statement
            for statement in role_statements(dev, role_of(properties))
            if "ses:SendEmail" in statement["Action"]
        ]
        if statements:
            senders.add(handler)
            (statement,) = statements
            assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": "kestrel@example.com"}}
    assert senders == SENDERS
