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


def test_an_existing_identity_is_left_alone_and_still_used(existing_identity: Synth) -> None:
    """sesIdentity=existing: no AWS::SES::EmailIdentity (creating an identity that is verified
    already fails the deploy with "already exists"); the senders keep their grant and the
    configuration set, which the mailer names on every SendEmail."""
    assert existing_identity.resources("AWS::SES::EmailIdentity") == {}
    assert len(existing_identity.resources("AWS::SES::ConfigurationSet")) == 1
    configuration_set = logical_id_of(existing_identity, "NotificationsConfigurationSet", "AWS::SES::ConfigurationSet")
    for handler in SENDERS:
        _, properties = functions_by_handler(existing_identity)[handler]
        variables = properties["Environment"]["Variables"]
        assert variables["KESTREL_MAIL_FROM"] == "kestrel@example.com"
        assert variables["KESTREL_SES_CONFIGURATION_SET"] == {"Ref": configuration_set}
        (statement,) = [
            s for s in role_statements(existing_identity, role_of(properties)) if "ses:SendEmail" in s["Action"]
        ]
        assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": "kestrel@example.com"}}


def test_by_default_the_stack_creates_the_identity_and_keeps_it(dev: Synth) -> None:
    (identity,) = dev.resources("AWS::SES::EmailIdentity").values()
    # Retained: deleting the stack, or switching it to sesIdentity=existing, leaves the sender verified.
    assert identity["DeletionPolicy"] == identity["UpdateReplacePolicy"] == "Retain"


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
