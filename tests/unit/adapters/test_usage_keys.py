"""Per-owner limits on AWS (moto): `kestrel token create` puts the owner's API key in the stack's
usage plan, and the token authorizer answers with that key as ``usageIdentifierKey``, which is
what API Gateway meters (the API's key source is AUTHORIZER; tests/infra checks the stack side)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from kestrel import composition
from kestrel.adapters.apigw_usage import OWNER_TAG, ApiGatewayUsageKeys
from kestrel.adapters.dynamo_items import create_table
from kestrel.cli.main import main
from kestrel.config import Settings
from kestrel.handlers.authorizer import lambda_handler
from kestrel.local.events import authorizer_event, event_from_wsgi
from kestrel.local.gateway import LocalLambdaContext
from kestrel.ports.usage import UsageKey
from kestrel.store import keys
from kestrel.store.accounts import create_token, ensure_owner, ensure_usage_key
from kestrel.store.keys import usage_key_key

pytestmark = pytest.mark.aws

REGION = "us-east-1"
TABLE = "usage-table"
TOKEN = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class Stack:
    """What the deployed stack provides: the table and the REST API's usage plan."""

    plan_id: str
    apigateway: Any

    def plan_keys(self) -> dict[str, str]:
        """key id -> value of every API key in the usage plan."""
        items = self.apigateway.get_usage_plan_keys(usagePlanId=self.plan_id)["items"]
        return {item["id"]: item["value"] for item in items}

    def api_keys(self) -> list[dict[str, Any]]:
        return list(self.apigateway.get_api_keys(includeValues=True)["items"])


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        apigateway = boto3.client("apigateway", region_name=REGION)
        api = apigateway.create_rest_api(name="kestrel-test", apiKeySource="AUTHORIZER")
        plan = apigateway.create_usage_plan(
            name="kestrel-test",
            throttle={"rateLimit": 10, "burstLimit": 20},
            quota={"limit": 1000, "period": "MONTH"},
        )
        create_table(boto3.client("dynamodb", region_name=REGION), TABLE)
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="usage-blobs")
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "KESTREL_RUNTIME": "aws",
            "KESTREL_TABLE": TABLE,
            "KESTREL_BUCKET": "usage-blobs",
            "KESTREL_USAGE_PLAN_ID": plan["id"],
        }.items():
            monkeypatch.setenv(name, value)
        assert api["apiKeySource"] == "AUTHORIZER"
        yield Stack(plan["id"], apigateway)
        composition.set_ports(None)


def token_create(capsys: pytest.CaptureFixture[str], email: str) -> str:
    assert main(["token", "create", "--email", email]) == 0
    token = capsys.readouterr().out.splitlines()[-1]
    assert TOKEN.match(token)
    return token


def authorizer_answer(token: str) -> dict[str, Any]:
    """What the authorizer Lambda answers API Gateway for a request with this token."""
    composition.set_ports(composition.build_ports(Settings.from_env()))
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/recognition/v2/task/",
        "QUERY_STRING": "",
        "HTTP_HOST": "abc123.execute-api.us-east-1.amazonaws.com",
        "HTTP_AUTHORIZATION": f"Token {token}",
    }
    context = LocalLambdaContext(
        function_name="kestrel-authorizer",
        memory_limit_in_mb=512,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:kestrel-authorizer",
        aws_request_id=str(uuid.uuid4()),
    )
    answer: dict[str, Any] = lambda_handler(authorizer_event(event_from_wsgi(environ, b"")), context)
    return answer


def test_token_create_puts_the_owners_key_in_the_usage_plan_and_the_authorizer_names_it(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    token = token_create(capsys, "metered@example.com")
    (key_id, value), *others = stack.plan_keys().items()
    assert not others
    (api_key,) = stack.api_keys()
    assert api_key["id"] == key_id and api_key["enabled"]
    assert api_key["name"].startswith("kestrel-")

    answer = authorizer_answer(token)
    assert answer["usageIdentifierKey"] == value
    owner_id = answer["principalId"]
    assert answer["context"] == {"owner_id": owner_id}
    assert api_key["tags"] == {OWNER_TAG: owner_id}


def test_one_key_per_owner_shared_by_their_tokens(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    first = token_create(capsys, "same@example.com")
    second = token_create(capsys, "same@example.com")
    other = token_create(capsys, "other@example.com")
    plan = stack.plan_keys()
    assert len(plan) == 2  # one key per owner, not per token
    assert authorizer_answer(first)["usageIdentifierKey"] == authorizer_answer(second)["usageIdentifierKey"]
    assert authorizer_answer(other)["usageIdentifierKey"] != authorizer_answer(first)["usageIdentifierKey"]
    assert {authorizer_answer(token)["usageIdentifierKey"] for token in (first, other)} == set(plan.values())


def test_token_create_on_aws_needs_the_usage_plan_id(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KESTREL_USAGE_PLAN_ID")
    assert main(["token", "create", "--email", "unmetered@example.com"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "KESTREL_USAGE_PLAN_ID" in err and "UsagePlanId" in err
    assert stack.api_keys() == []


def test_an_unknown_usage_plan_is_refused_before_anything_is_made(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KESTREL_USAGE_PLAN_ID", "nosuchplan")
    assert main(["token", "create", "--email", "lost@example.com"]) == 2
    err = capsys.readouterr().err.strip()
    assert "usage plan nosuchplan does not exist" in err and "UsagePlanId" in err
    assert stack.api_keys() == []
    monkeypatch.setenv("KESTREL_USAGE_PLAN_ID", stack.plan_id)
    assert main(["token", "list"]) == 0
    assert "lost@example.com" not in capsys.readouterr().out  # no token was stored either


def test_token_keys_meters_tokens_made_before_the_usage_plan(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    ports = composition.build_ports(Settings.from_env())
    owner = ensure_owner(ports.items, "early@example.com")
    old_token, _ = create_token(ports.items, owner, "before per-owner limits")  # no usage key
    assert "usageIdentifierKey" not in authorizer_answer(old_token)  # API Gateway answers 403

    assert main(["token", "keys"]) == 0
    assert "1 owner(s) got an API key" in capsys.readouterr().out
    (value,) = stack.plan_keys().values()
    assert authorizer_answer(old_token)["usageIdentifierKey"] == value

    assert main(["token", "keys"]) == 0  # safe to repeat: nothing new
    assert "0 owner(s) got an API key" in capsys.readouterr().out
    assert len(stack.plan_keys()) == 1


class FailingJoin:
    """The real (moto) client, except that adding a key to the usage plan fails."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def create_usage_plan_key(self, **_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ConflictException", "Message": "injected"}}, "CreateUsagePlanKey")


def test_a_key_that_cannot_join_the_plan_is_not_left_behind(stack: Stack) -> None:
    usage_keys = ApiGatewayUsageKeys(stack.plan_id, client=FailingJoin(stack.apigateway))
    with pytest.raises(ClientError, match="injected"):
        usage_keys.create_key("owner-1")
    assert stack.api_keys() == []


class RacedKeys:
    """Usage keys whose owner is given a key by another run right after this one made its own."""

    def __init__(self, real: ApiGatewayUsageKeys, items: Any, rival: UsageKey) -> None:
        self.real, self.items, self.rival = real, items, rival

    def create_key(self, owner_id: str) -> UsageKey:
        made = self.real.create_key(owner_id)
        pk, sk = usage_key_key(owner_id)
        self.items.put({"pk": pk, "sk": sk, "key_id": self.rival.key_id, "value": self.rival.value, "created": "x"})
        return made

    def delete_key(self, key_id: str) -> None:
        self.real.delete_key(key_id)


def test_two_runs_racing_for_a_new_owner_keep_one_key(stack: Stack) -> None:
    ports = composition.build_ports(Settings.from_env())
    real = ApiGatewayUsageKeys(stack.plan_id, client=stack.apigateway)
    rival = real.create_key("owner-2")
    value = ensure_usage_key(ports.items, RacedKeys(real, ports.items, rival), "owner-2")
    assert value == rival.value  # the first one stored wins
    assert [key["id"] for key in stack.api_keys()] == [rival.key_id]  # the loser's key is gone
    stored = ports.items.get(keys.usage_key_key("owner-2"))
    assert stored is not None and stored["key_id"] == rival.key_id
