"""Least privilege, checked over EVERY policy document in the template (identity and resource
policies): no wildcard actions, ``*`` resources only where IAM offers no scope, no managed
policies, and per-role table/bucket/queue access as designed."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infra.synth import REPO_ROOT, Synth, require_node

require_node()

from tests.infra.template_tools import (  # noqa: E402
    all_policy_documents,
    as_list,
    functions_by_handler,
    logical_id_of,
    render,
    role_of,
    role_statements,
    service_grants,
)

#: Actions that IAM only grants on "*": they have no resource type to scope to.
NO_RESOURCE_SCOPE = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "ecr:GetAuthorizationToken"}

#: Resource wildcards that are scopes (a prefix, a name pattern), each with why it is needed.
SCOPED_WILDCARDS = [
    r"<DataBlobs[0-9A-F]{8}\.Arn>/(images|uploads|models|jobs|embeddings)/\*",  # one key prefix
    r"<DataBlobs[0-9A-F]{8}\.Arn>/jobs/\*/output/\*",  # SageMaker job outputs
    r"<ConsoleSite[0-9A-F]{8}\.Arn>/\*",  # the console's own bucket
    r"<DataLogs[0-9A-F]{8}\.Arn>/s3/(blobs|console)/\*",  # S3 server access log delivery (resource policy)
    r"arn:<AWS::Partition>:s3:::cdk-[a-z0-9]+-assets-<AWS::AccountId>-<AWS::Region>/\*\.zip",  # staged web/
    r"arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/kestrel-\*",
    r"arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>:identity/\*",  # SES sandbox recipients
    r"arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/TrainingJobs"
    r":log-stream:kestrel-\*",
    r"arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:\*",  # API GW account logging
]


def _allow_statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    return [
        (where, statement)
        for where, document in all_policy_documents(synth)
        for statement in document["Statement"]
        if statement["Effect"] == "Allow"
    ]


def _wildcard_problems(synth: Synth) -> list[str]:
    problems = []
    for where, statement in _allow_statements(synth):
        actions = [str(action) for action in as_list(statement.get("Action", []))]
        for action in actions:
            if "*" in action:
                problems.append(f"{where}: wildcard action {action}")
        for resource in as_list(statement.get("Resource", [])):
            text = render(resource)
            if text == "*":
                if not set(actions) <= NO_RESOURCE_SCOPE:
                    problems.append(f"{where}: {sorted(set(actions) - NO_RESOURCE_SCOPE)} on '*'")
            elif "*" in text and not any(re.fullmatch(pattern, text) for pattern in SCOPED_WILDCARDS):
                problems.append(f"{where}: unexpected wildcard resource {text}")
    return problems


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_no_wildcard_actions_and_no_star_resources_where_a_scope_exists(
    variant: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(variant)
    assert len(_allow_statements(synth)) > 30  # the walk really sees the policies
    assert _wildcard_problems(synth) == []


def test_the_checker_catches_what_it_should() -> None:
    """The checker itself, on a fake template: proves it is not vacuous."""
    from pathlib import Path

    bad = Synth(
        stack=None,
        template_json={
            "Resources": {
                "P": {
                    "Type": "AWS::IAM::Policy",
                    "Properties": {
                        "PolicyDocument": {
                            "Statement": [
                                {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/x"},
                                {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"},
                                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                                {"Effect": "Allow", "Action": "xray:PutTraceSegments", "Resource": "*"},
                            ]
                        }
                    },
                }
            }
        },
        template=None,
        outdir=Path(),
    )
    problems = _wildcard_problems(bad)
    assert len(problems) == 3, problems


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_no_role_uses_a_managed_policy(variant: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(variant)
    for logical_id, role in synth.resources("AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], logical_id
    assert not synth.resources("AWS::IAM::ManagedPolicy")


def test_every_function_has_its_own_role(dev: Synth) -> None:
    roles = [role_of(properties) for _, properties in functions_by_handler(dev).values()]
    assert len(set(roles)) == len(roles)


READ = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}
WRITE = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}
TABLE_ACCESS = {
    "api": READ | WRITE,
    "classify": READ,
    "authorizer": READ,
    "launcher": READ | WRITE,
    "finisher": READ | WRITE,
}


def test_table_access_per_function(dev: Synth) -> None:
    table = logical_id_of(dev, "DataItemsV2", "AWS::DynamoDB::Table")
    for handler, (_, properties) in functions_by_handler(dev).items():
        name = handler.split(".")[-2]
        allowed = service_grants(role_statements(dev, role_of(properties)), "dynamodb")
        assert {action for action, _ in allowed} == TABLE_ACCESS[name], name
        assert {resource for _, resource in allowed} == {f"<{table}.Arn>", f"<{table}.Arn>/index/by_list"}


def test_bucket_access_of_the_http_functions(dev: Synth) -> None:
    blobs = logical_id_of(dev, "DataBlobs", "AWS::S3::Bucket")
    functions = functions_by_handler(dev)

    def s3(name: str) -> set[tuple[str, str]]:
        return service_grants(
            role_statements(dev, role_of(functions[f"kestrel.handlers.{name}.lambda_handler"][1])), "s3"
        )

    api = {
        (action, f"<{blobs}.Arn>/{prefix}/*")
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
        for prefix in ("images", "uploads", "models")
    }
    assert s3("api") == api | {("s3:ListBucket", f"<{blobs}.Arn>")}
    assert s3("classify") == {
        ("s3:GetObject", f"<{blobs}.Arn>/images/*"),
        ("s3:GetObject", f"<{blobs}.Arn>/models/*"),
        ("s3:ListBucket", f"<{blobs}.Arn>"),
    }
    assert s3("authorizer") == set()


def test_only_the_api_enqueues_train_requests(dev: Synth) -> None:
    queue = logical_id_of(dev, "TrainingTrainRequests", "AWS::SQS::Queue")
    for handler, (_, properties) in functions_by_handler(dev).items():
        sends = ("sqs:SendMessage", f"<{queue}.Arn>") in service_grants(
            role_statements(dev, role_of(properties)), "sqs"
        )
        assert sends == handler.endswith(".api.lambda_handler"), handler


#: Every SageMaker, SES and SQS action a function's role may call, and who calls it: "code" (a
#: boto3 call in functions/kestrel, found by its snake_case name) or the AWS service acting with
#: the function's role, with why. A grant outside this table is a grant nobody uses.
CALLS: dict[str, dict[str, str]] = {
    "launcher": {
        "sagemaker:CreateTrainingJob": "code",
        "sagemaker:AddTags": "SageMaker authorises the Tags of CreateTrainingJob as AddTags",
        "ses:SendEmail": "code",
        "sqs:ReceiveMessage": "Lambda's SQS poller (the event source mapping)",
        "sqs:DeleteMessage": "Lambda's SQS poller (the event source mapping)",
        "sqs:GetQueueAttributes": "Lambda's SQS poller (the event source mapping)",
    },
    "finisher": {
        "ses:SendEmail": "code",
        "sqs:SendMessage": "Lambda's asynchronous invocation, to the finisher's dead-letter queue",
    },
    "api": {"sqs:SendMessage": "code"},
    "authorizer": {},
    "classify": {},
}
SERVICES_CHECKED = ("sagemaker", "ses", "sqs")


def _snake(action: str) -> str:
    name = action.split(":", 1)[1]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_no_function_is_granted_a_call_nobody_makes(dev: Synth) -> None:
    source = "\n".join(path.read_text() for path in sorted((REPO_ROOT / "functions" / "kestrel").rglob("*.py")))
    for handler, (_, properties) in functions_by_handler(dev).items():
        short = handler.split(".")[-2]
        statements = role_statements(dev, role_of(properties))
        granted = {action for service in SERVICES_CHECKED for action, _ in service_grants(statements, service)}
        assert granted == set(CALLS[short]), f"{short}: granted {sorted(granted)}"
        for action, caller in CALLS[short].items():
            if caller == "code":
                assert f".{_snake(action)}(" in source, f"{short}: no code calls {action}"
