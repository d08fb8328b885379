"""cdk-nag's AwsSolutions pack runs in every synth of these tests: zero unacknowledged findings,
and every acknowledgment carries a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.infra.synth import Synth, require_node

require_node()

from aws_cdk import Validations  # noqa: E402

#: The rules acknowledged somewhere besides IAM5 (resource wildcards, see infra/iam_review.py).
#: A new kind of suppression must be added here on purpose, after review.
KNOWN_ACKNOWLEDGMENTS = {
    "AwsSolutions-S1",  # the access-log bucket itself
    "AwsSolutions-APIG2",  # validation happens in the handler (Pydantic), not in API Gateway models
    "AwsSolutions-APIG3",  # no WAF by default (cost), throttling instead
    "AwsSolutions-APIG4",  # the public OpenAPI document and reference page
    "AwsSolutions-COG4",  # Ximilar-style API tokens via the Lambda authorizer, not Cognito
    "AwsSolutions-CFR1",  # no geo restriction
    "AwsSolutions-CFR2",  # no WAF on the static console
    "AwsSolutions-CFR4",  # the default *.cloudfront.net certificate (no custom domain)
    "AwsSolutions-SNS2",  # alarm topic without a customer KMS key
    "AwsSolutions-SQS3",  # the dead-letter queues themselves
    "AwsSolutions-L1",  # CDK's own BucketDeployment handler runtime
}


def _acknowledgments(synth: Synth) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for construct in synth.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                found.setdefault(construct.node.path, {}).update(entry.data)
    return found


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_synth_passed_nag_with_nothing_left_unacknowledged(variant: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(variant)  # the fixture's synth raises on any finding
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    (plugin,) = [plugin for plugin in report["pluginReports"] if plugin["pluginName"] == "AwsSolutions"]
    assert plugin["conclusion"] == "success"
    assert plugin["violations"] == []
    assert plugin["suppressedViolations"]  # the pack ran, and found what we acknowledged
    for violation in plugin["suppressedViolations"]:
        assert len(violation["reason"]) >= 30, violation["acknowledgedId"]


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_every_acknowledgment_has_a_reason_and_a_known_rule(variant: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(variant)
    acknowledgments = _acknowledgments(synth)
    assert acknowledgments
    for path, rules in acknowledgments.items():
        for rule, reason in rules.items():
            assert rule.startswith("AwsSolutions::"), (path, rule)
            finding = rule.removeprefix("AwsSolutions::")
            assert len(reason) >= 30, (path, rule, reason)
            if finding.startswith("AwsSolutions-IAM5["):
                assert finding.startswith("AwsSolutions-IAM5[Resource::"), (path, finding)  # never Action::*
            else:
                assert finding in KNOWN_ACKNOWLEDGMENTS, (path, finding)


def test_nag_really_fails_a_synth(tmp_path: Path) -> None:
    """The plugin as infra.nag installs it stops a synth on a finding (here S1, S10)."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_s3 as s3

    from infra.nag import add_nag

    app = App(outdir=str(tmp_path))
    s3.Bucket(Stack(app, "Unsafe"), "Bucket")
    add_nag(app)
    with pytest.raises(RuntimeError, match=r"ValidationFailed(.|\n)*AwsSolutions-S1"):
        app.synth()
