"""Reading a synthesised template: functions by handler, roles, policy statements, API paths."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from infra.iam_review import render
from tests.infra.synth import Synth


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def logical_id_of(synth: Synth, prefix: str, type_name: str) -> str:
    """The one resource of ``type_name`` whose logical id is ``prefix`` + CDK's 8-hex-digit hash."""
    matches = [lid for lid in synth.resources(type_name) if re.fullmatch(f"{prefix}[0-9A-F]{{8}}", lid)]
    assert len(matches) == 1, f"expected one {type_name} named {prefix}*, found {matches}"
    return matches[0]


def functions_by_handler(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    """handler string (the image CMD) -> (logical id, properties)."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for logical_id, resource in synth.resources("AWS::Lambda::Function").items():
        properties = resource["Properties"]
        command = (properties.get("ImageConfig") or {}).get("Command")
        if command:
            (handler,) = command
            found[handler] = (logical_id, properties)
    return found


def role_of(function_properties: dict[str, Any]) -> str:
    role = function_properties["Role"]
    assert "Fn::GetAtt" in role, role
    return str(role["Fn::GetAtt"][0])


def role_statements(synth: Synth, role_id: str) -> list[dict[str, Any]]:
    """Every statement that applies to the role: inline policies and attached AWS::IAM::Policy."""
    role = synth.template_json["Resources"][role_id]
    statements = [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def grants(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(action, rendered resource) pairs allowed by ``statements``."""
    return {
        (action, render(resource))
        for statement in statements
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
        for resource in as_list(statement.get("Resource", []))
    }


def service_grants(statements: list[dict[str, Any]], service: str) -> set[tuple[str, str]]:
    return {(action, resource) for action, resource in grants(statements) if action.startswith(f"{service}:")}


def all_policy_documents(synth: Synth) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, document) for every IAM policy and resource policy in the template."""
    for logical_id, resource in synth.template_json["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield logical_id, properties["PolicyDocument"]
        elif resource["Type"] == "AWS::IAM::Role":
            yield f"{logical_id} (trust)", properties["AssumeRolePolicyDocument"]
            for policy in properties.get("Policies", []):
                yield f"{logical_id}/{policy['PolicyName']}", policy["PolicyDocument"]
        elif resource["Type"] in (
            "AWS::S3::BucketPolicy",
            "AWS::SQS::QueuePolicy",
            "AWS::SNS::TopicPolicy",
        ):
            yield logical_id, properties["PolicyDocument"]


def api_paths(synth: Synth) -> dict[str, str]:
    """API Gateway resource logical id -> its full path (``/recognition/v2/classify``)."""
    resources = synth.resources("AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(logical_id: str) -> str:
        if logical_id not in paths:
            properties = resources[logical_id]["Properties"]
            parent = properties["ParentId"]
            prefix = path_of(parent["Ref"]) if "Ref" in parent else ""
            paths[logical_id] = f"{prefix}/{properties['PathPart']}"
        return paths[logical_id]

    for logical_id in resources:
        path_of(logical_id)
    return paths


def api_methods(synth: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    """(path, HTTP method) -> method properties; the root is ``/``."""
    paths = api_paths(synth)
    methods: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in synth.resources("AWS::ApiGateway::Method").values():
        properties = resource["Properties"]
        resource_id = properties["ResourceId"]
        path = paths[resource_id["Ref"]] if "Ref" in resource_id else "/"
        methods[(path, properties["HttpMethod"])] = properties
    return methods
