"""Acknowledge cdk-nag's IAM5 (wildcard) findings that are scopes, not "anything".

cdk-nag 3 wants every wildcard finding acknowledged one by one, and the findings name resolved
resources (``<DataBlobsA9860EC7.Arn>/images/*``) that change with construct paths. So instead
of hand-copied strings, this walks the stack's policies once they are complete and acknowledges
exactly the wildcards of the kinds below, each with its reason. Anything else (a ``*`` action,
a bare ``*`` resource on an action that has a resource scope, an unknown pattern) is left for
cdk-nag to fail the synth. tests/infra re-checks every policy independently.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from infra.nag import acknowledge

#: Actions IAM only grants on ``"*"`` (they have no resource types).
NO_RESOURCE_SCOPE: dict[str, str] = {
    "xray:PutTraceSegments": "X-Ray tracing (Lambda active tracing)",
    "xray:PutTelemetryRecords": "X-Ray tracing (Lambda active tracing)",
    "ecr:GetAuthorizationToken": "ECR login before the scoped image pull",
}

#: Wildcards that are scopes: (pattern over nag's rendering of the resource, reason).
SCOPED_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"^<DataBlobs[0-9A-F]{8}\.Arn>/(images|uploads|models|jobs|embeddings)/(\*/output/)?\*$"),
        "Objects under one key prefix of Kestrel's own blob bucket (least privilege per prefix).",
    ),
    (
        re.compile(r"^<ConsoleSite[0-9A-F]{8}\.Arn>/\*$"),
        "The console's own site bucket: the deployment syncs (and prunes) the whole static site.",
    ),
    (
        re.compile(r"^arn:<AWS::Partition>:s3:::cdk-[a-z0-9]+-assets-<AWS::AccountId>-<AWS::Region>/\*\.zip$"),
        "Read-only, zip assets in CDK's bootstrap bucket: where `cdk deploy` stages web/ and the "
        "rendered config.json (their keys are content hashes).",
    ),
    (
        re.compile(r"^arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/kestrel-\*$"),
        "Kestrel's own training jobs only (job names are kestrel-<model id>).",
    ),
    (
        re.compile(r"^arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>:identity/\*$"),
        "In the SES sandbox the recipient's identity is authorised too; the From address is "
        "pinned by the ses:FromAddress condition.",
    ),
    (
        re.compile(
            r"^arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
            r"/aws/sagemaker/TrainingJobs:log-stream:kestrel-\*$"
        ),
        "Log streams of Kestrel's own training jobs in SageMaker's log group.",
    ),
    (
        re.compile(r"^arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:\*$"),
        "API Gateway's logging role is an account-wide setting used by every API in the region: "
        "its execution log groups are named after API ids it creates.",
    ),
)


def render(value: Any) -> str:
    """A resource as cdk-nag names it in findings: ``<Logical.Attr>``, ``<AWS::Region>``..."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return f"<{argument}>"
        if function == "Fn::GetAtt":
            return f"<{argument[0]}.{argument[1]}>"
        if function == "Fn::Sub" and isinstance(argument, str):
            return re.sub(r"\$\{([^}]+)\}", r"<\1>", argument)
        if function == "Fn::Join":
            separator, parts = argument
            return str(separator).join(render(part) for part in parts)
    return json.dumps(value, sort_keys=True)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def scoped_wildcard_reason(resource: str, actions: list[str]) -> str | None:
    """Why this wildcard resource is acceptable for these actions, or None if it is not."""
    if resource == "*":
        if actions and all(action in NO_RESOURCE_SCOPE for action in actions):
            uses = sorted({NO_RESOURCE_SCOPE[action] for action in actions})
            return f"{', '.join(sorted(actions))} support no resource-level scope ({'; '.join(uses)})."
        return None
    for pattern, reason in SCOPED_PATTERNS:
        if pattern.match(resource):
            return reason
    return None


def acknowledge_scoped_wildcards(stack: Stack) -> None:
    for construct in stack.node.find_all():
        if not isinstance(construct, iam.CfnPolicy):
            continue
        document = stack.resolve(construct.policy_document)
        for statement in document.get("Statement", []):
            if statement.get("Effect") != "Allow":
                continue
            actions = [str(action) for action in _as_list(statement.get("Action", []))]
            if any("*" in action for action in actions):
                continue  # never acknowledged: cdk-nag and tests/infra fail on it
            for resource in _as_list(statement.get("Resource", [])):
                rendered = render(resource)
                if "*" not in rendered:
                    continue
                reason = scoped_wildcard_reason(rendered, actions)
                if reason is not None:
                    acknowledge(construct, f"AwsSolutions-IAM5[Resource::{rendered}]", reason)
