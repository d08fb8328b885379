"""The data layer: the DynamoDB table the adapter expects, and the buckets."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tests.infra.synth import Synth, require_node

require_node()

from aws_cdk.assertions import Match  # noqa: E402

from tests.infra.template_tools import logical_id_of, render  # noqa: E402


class _RecordingClient:
    """Stands in for boto3's DynamoDB client: keeps what create_table asks for."""

    def __init__(self) -> None:
        self.request: dict[str, Any] = {}

    def create_table(self, **request: Any) -> None:
        self.request = request

    def get_waiter(self, _name: str) -> Any:
        return SimpleNamespace(wait=lambda **_: None)


def _table(synth: Synth) -> dict[str, Any]:
    """The item table the functions use (layout 2)."""
    return synth.resources("AWS::DynamoDB::Table")[logical_id_of(synth, "DataItemsV2", "AWS::DynamoDB::Table")]


def test_table_has_exactly_the_schema_the_dynamo_adapter_creates(dev: Synth) -> None:
    from kestrel.adapters.dynamo_items import create_table

    client = _RecordingClient()
    create_table(client, "kestrel-test")
    expected = client.request
    properties = _table(dev)["Properties"]

    def by_name(items: list[dict[str, str]]) -> list[dict[str, str]]:
        return sorted(items, key=lambda item: item["AttributeName"])

    assert by_name(properties["AttributeDefinitions"]) == by_name(expected["AttributeDefinitions"])
    assert properties["KeySchema"] == expected["KeySchema"]
    assert properties["GlobalSecondaryIndexes"] == expected["GlobalSecondaryIndexes"]
    assert properties["GlobalSecondaryIndexes"][0]["IndexName"] == "by_list"
    assert properties["BillingMode"] == expected["BillingMode"] == "PAY_PER_REQUEST"
    assert "LocalSecondaryIndexes" not in properties  # nothing caps an item collection at 10 GB
    assert "ProvisionedThroughput" not in properties


def test_table_has_point_in_time_recovery_on_every_stage(dev: Synth, prod: Synth) -> None:
    for synth in (dev, prod):
        synth.template.has_resource_properties(
            "AWS::DynamoDB::Table",
            {"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}},
        )


def test_table_is_protected_outside_dev(dev: Synth, prod: Synth) -> None:
    prod_table = _table(prod)
    assert prod_table["Properties"]["DeletionProtectionEnabled"] is True
    assert prod_table["DeletionPolicy"] == prod_table["UpdateReplacePolicy"] == "Retain"
    dev_table = _table(dev)
    assert dev_table["Properties"]["DeletionProtectionEnabled"] is False
    assert dev_table["DeletionPolicy"] == "Delete"


def test_every_bucket_is_encrypted_private_and_tls_only(dev: Synth, prod: Synth) -> None:
    for synth in (dev, prod):
        buckets = synth.resources("AWS::S3::Bucket")
        assert len(buckets) == 3  # blobs, logs, console site
        policies = {
            render(policy["Properties"]["Bucket"]): policy["Properties"]["PolicyDocument"]["Statement"]
            for policy in synth.resources("AWS::S3::BucketPolicy").values()
        }
        for logical_id, bucket in buckets.items():
            properties = bucket["Properties"]
            assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            ], logical_id
            assert properties["PublicAccessBlockConfiguration"] == {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            }, logical_id
            statements = policies[f"<{logical_id}>"]
            denies = [s for s in statements if s["Effect"] == "Deny" and s["Principal"] == {"AWS": "*"}]
            conditions = [s["Condition"] for s in denies]
            assert {"Bool": {"aws:SecureTransport": "false"}} in conditions, logical_id
            assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions, logical_id


def test_blob_bucket_is_versioned_logged_and_retained(dev: Synth) -> None:
    blobs_id = logical_id_of(dev, "DataBlobs", "AWS::S3::Bucket")
    logs_id = logical_id_of(dev, "DataLogs", "AWS::S3::Bucket")
    blobs = dev.template_json["Resources"][blobs_id]
    assert blobs["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert blobs["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}
    assert blobs["DeletionPolicy"] == "Retain"  # customer images survive a stack deletion


def test_blob_bucket_lifecycle_expires_uploads_jobs_and_old_versions(dev: Synth) -> None:
    blobs_id = logical_id_of(dev, "DataBlobs", "AWS::S3::Bucket")
    rules = dev.template_json["Resources"][blobs_id]["Properties"]["LifecycleConfiguration"]["Rules"]
    by_prefix = {rule.get("Prefix"): rule for rule in rules}
    assert by_prefix["uploads/"]["ExpirationInDays"] == 1
    assert by_prefix["uploads/"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert by_prefix["jobs/"]["ExpirationInDays"] == 30
    everything = by_prefix[None]
    assert everything["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert everything["ExpiredObjectDeleteMarker"] is True
    assert all(rule["Status"] == "Enabled" for rule in rules)
    # The caches and the models stay: no rule may touch them.
    assert not {"images/", "models/", "embeddings/"} & set(by_prefix)


def test_blob_bucket_accepts_presigned_uploads_from_the_console(dev: Synth) -> None:
    dev.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "CorsConfiguration": {
                "CorsRules": [
                    Match.object_like(
                        {
                            "AllowedMethods": Match.array_with(["PUT"]),
                            "AllowedOrigins": [
                                {
                                    "Fn::Join": [
                                        "",
                                        [
                                            "https://",
                                            {"Fn::GetAtt": [Match.string_like_regexp("^ConsoleCdn"), "DomainName"]},
                                        ],
                                    ]
                                }
                            ],
                        }
                    )
                ]
            }
        },
    )


def test_outputs_name_the_table_and_the_bucket(dev: Synth) -> None:
    outputs = dev.template_json["Outputs"]
    assert outputs["TableName"]["Value"] == {"Ref": logical_id_of(dev, "DataItemsV2", "AWS::DynamoDB::Table")}
    assert outputs["LegacyTableName"]["Value"] == {"Ref": logical_id_of(dev, "DataItems", "AWS::DynamoDB::Table")}
    assert outputs["BucketName"]["Value"] == {"Ref": logical_id_of(dev, "DataBlobs", "AWS::S3::Bucket")}
    assert outputs["Region"]["Value"] == {"Ref": "AWS::Region"}


def test_the_legacy_table_stays_exactly_as_deployed_and_retained(dev: Synth, prod: Synth) -> None:
    """Layout 1's table keeps its logical id, keys and local index (any change there would make
    CloudFormation replace it, data and all) and is retained on every stage, dev included."""
    for synth in (dev, prod):
        legacy = synth.resources("AWS::DynamoDB::Table")[logical_id_of(synth, "DataItems", "AWS::DynamoDB::Table")]
        properties = legacy["Properties"]
        assert properties["KeySchema"] == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        assert properties["LocalSecondaryIndexes"] == [
            {
                "IndexName": "by_ord",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "ord", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
        assert legacy["DeletionPolicy"] == legacy["UpdateReplacePolicy"] == "Retain"
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_legacy_table_drop_leaves_one_table(existing_identity: Synth) -> None:
    (table,) = existing_identity.resources("AWS::DynamoDB::Table")
    assert table == logical_id_of(existing_identity, "DataItemsV2", "AWS::DynamoDB::Table")
    assert "LegacyTableName" not in existing_identity.template_json["Outputs"]
