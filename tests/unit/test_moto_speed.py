"""tests/moto_speed.py keeps moto's outcomes: a cancelled transaction changes nothing, a
successful one changes every item it names, and service models load the same in every session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.serialize import AttributePicker
from moto.dynamodb.models import DynamoDBBackend

from tests import moto_speed

TABLE = "speed"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for sk, count in (("a", "1"), ("b", "2"), ("c", "3")):
            client.put_item(TableName=TABLE, Item={"pk": {"S": "p"}, "sk": {"S": sk}, "n": {"N": count}})
        yield client


def everything(client: Any) -> list[dict[str, Any]]:
    items = client.scan(TableName=TABLE)["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def key(sk: str) -> dict[str, Any]:
    return {"pk": {"S": "p"}, "sk": {"S": sk}}


def writes(last: dict[str, Any]) -> list[dict[str, Any]]:
    """A put of a new item, an update and a delete of existing ones, then ``last``."""
    return [
        {"Put": {"TableName": TABLE, "Item": {**key("new"), "n": {"N": "9"}}}},
        {
            "Update": {
                "TableName": TABLE,
                "Key": key("a"),
                "UpdateExpression": "SET n = n + :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
        {"Delete": {"TableName": TABLE, "Key": key("b")}},
        last,
    ]


def c_holds(number: str) -> dict[str, Any]:
    """A condition check that item c's n is ``number``."""
    return {
        "ConditionCheck": {
            "TableName": TABLE,
            "Key": key("c"),
            "ConditionExpression": "n = :n",
            "ExpressionAttributeValues": {":n": {"N": number}},
        }
    }


def test_the_patch_is_installed_by_the_suite(request: pytest.FixtureRequest) -> None:
    if not request.config.pluginmanager.has_plugin("tests.moto_speed"):
        pytest.skip("run with -p no:tests.moto_speed: moto as it comes")
    assert DynamoDBBackend.transact_write_items is moto_speed._transact_write_items


@pytest.fixture(autouse=True)
def _installed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Also under -p no:tests.moto_speed (then only for the test): these tests check the changes.
    moto_speed.install(monkeypatch.setattr)


def test_a_transaction_cancelled_by_its_last_condition_changes_nothing(dynamodb: Any) -> None:
    before = everything(dynamodb)
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=writes(c_holds("42")))  # c holds 3
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert everything(dynamodb) == before


def test_a_transaction_refused_as_invalid_midway_changes_nothing(dynamodb: Any) -> None:
    before = everything(dynamodb)
    second_write_of_a = {"Delete": {"TableName": TABLE, "Key": key("a")}}  # one item twice: refused
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=writes(second_write_of_a))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert everything(dynamodb) == before


def test_a_transaction_that_succeeds_changes_every_item_it_names(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=writes(c_holds("3")))
    assert [(item["sk"]["S"], item["n"]["N"]) for item in everything(dynamodb)] == [
        ("a", "2"),
        ("c", "3"),
        ("new", "9"),
    ]


def test_service_models_are_the_same_in_a_new_session() -> None:
    first = botocore.session.get_session().get_service_model("dynamodb")
    second = botocore.session.get_session().get_service_model("dynamodb")
    assert first.operation_names == second.operation_names
    assert "TransactWriteItems" in first.operation_names


def test_responses_read_the_same_with_moto_s_own_attribute_picker(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def reads() -> list[Any]:
        answers = [
            dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": [key("a"), key("b"), key("missing")]}}),
            dynamodb.query(
                TableName=TABLE,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": "p"}},
                Limit=2,
                ReturnConsumedCapacity="TOTAL",
            ),
            dynamodb.get_item(TableName=TABLE, Key=key("c")),
            dynamodb.describe_table(TableName=TABLE)["Table"]["KeySchema"],
        ]
        for answer in answers:
            if isinstance(answer, dict):
                answer.pop("ResponseMetadata", None)
        return answers

    fast = reads()
    monkeypatch.setattr(AttributePicker, "__call__", moto_speed._moto_pick)
    assert reads() == fast
