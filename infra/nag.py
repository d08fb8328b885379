"""cdk-nag (AwsSolutions pack) for the app, and the one helper every suppression goes through."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

NAG_PREFIX = "AwsSolutions::"


def add_nag(app: App) -> None:
    """Run AwsSolutions at synth: any unacknowledged error fails the synth (cdk-nag 3 plugs into
    CDK's policy validation; the 2.x ``Aspects.of(app).add(...)`` form no longer works)."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Suppress one AwsSolutions finding on ``construct`` (and its children), with the reason."""
    if len(reason.strip()) < 20:
        raise ValueError(f"a suppression of {rule} needs a real reason, not {reason!r}")
    # cdk-nag's findings are named "AwsSolutions::<rule>" (an id without a known prefix would be
    # recorded as a CDK annotation).
    finding = rule if rule.startswith(NAG_PREFIX) else f"{NAG_PREFIX}{rule}"
    Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))
