"""Data: the DynamoDB item table, the blob bucket, and the bucket that receives access logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge
from infra.settings import Settings
from kestrel.adapters.dynamo_items import LIST_INDEX
from kestrel.ports.items import LIST, ORD, PK, SK

# Blob key prefixes (kestrel.store.keys and kestrel.flow.launch name the keys under them).
IMAGES = "images/"
UPLOADS = "uploads/"
MODELS = "models/"
JOBS = "jobs/"
EMBEDDINGS = "embeddings/"

UPLOAD_DAYS = 1  # a presigned upload not registered within a day is abandoned
JOB_DAYS = 30  # manifests and raw job outputs; the finisher copies what it keeps into models/
NONCURRENT_DAYS = 30  # how long a deleted or overwritten blob can still be restored
LOG_DAYS = 90
LEGACY_ORD_INDEX = "by_ord"  # the local index of the layout-1 table


class Data(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        keep = RemovalPolicy.DESTROY if settings.is_dev else RemovalPolicy.RETAIN

        # The schema kestrel.adapters.dynamo_items.create_table makes (tests/infra compares them).
        # On demand: Kestrel's traffic is spiky and often zero, so capacity planning buys nothing.
        # Encryption at rest is DynamoDB's default (AWS owned key), free of KMS request charges.
        # A new logical id: the layout-1 table ("Items") had a local index, which DynamoDB cannot
        # remove from a table, so layout 2 lives in a new one (docs/operations.md, "Upgrading to
        # the partition layout").
        self.table = self._items_table("ItemsV2", settings, keep)
        # A *global* index: no item collection is capped at 10 GB, and a list's partition is the
        # list (sharded where it grows with the images), not the owner.
        self.table.add_global_secondary_index(
            index_name=LIST_INDEX,
            partition_key=dynamodb.Attribute(name=LIST, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=ORD, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        self.index_arn = f"{self.table.table_arn}/index/{LIST_INDEX}"
        self.legacy_table = self._legacy_table(settings) if settings.keep_legacy_table else None

        # S3 server access logs and CloudFront standard logs. CloudFront's (legacy) log delivery
        # writes with ACLs, hence BUCKET_OWNER_PREFERRED rather than ACLs disabled.
        self.logs_bucket = s3.Bucket(
            self,
            "Logs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-logs",
                    expiration=Duration.days(LOG_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.logs_bucket,
            "AwsSolutions-S1",
            "This is the access-log bucket itself; logging it into itself would loop.",
        )

        self.bucket = s3.Bucket(
            self,
            "Blobs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,  # an accidental delete or overwrite can be undone for NONCURRENT_DAYS
            server_access_logs_bucket=self.logs_bucket,
            server_access_logs_prefix="s3/blobs/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-unregistered-uploads",
                    prefix=UPLOADS,
                    expiration=Duration.days(UPLOAD_DAYS),
                    noncurrent_version_expiration=Duration.days(UPLOAD_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(UPLOAD_DAYS),
                ),
                s3.LifecycleRule(
                    id="expire-job-files",
                    prefix=JOBS,
                    expiration=Duration.days(JOB_DAYS),
                    noncurrent_version_expiration=Duration.days(1),
                ),
                s3.LifecycleRule(
                    # Versioning must not keep deleted images (customer data) forever.
                    id="expire-old-versions",
                    noncurrent_version_expiration=Duration.days(NONCURRENT_DAYS),
                    expired_object_delete_marker=True,
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,  # customer images survive a stack deletion
        )

    def _items_table(self, construct_id: str, settings: Settings, removal: RemovalPolicy) -> dynamodb.Table:
        """An item table: (pk, sk) strings, on demand, point-in-time recovery, protected outside dev."""
        return dynamodb.Table(
            self,
            construct_id,
            partition_key=dynamodb.Attribute(name=PK, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=SK, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=not settings.is_dev,
            removal_policy=removal,
        )

    def _legacy_table(self, settings: Settings) -> dynamodb.Table:
        """The layout-1 table exactly as it was deployed (same id, keys, local index), so that
        CloudFormation leaves it and its data alone; retained on every stage. Nothing reads it
        but ``kestrel table migrate``; ``-c legacyTable=drop`` takes it out of the stack (it is
        then kept in the account, to delete by hand)."""
        table = self._items_table("Items", settings, RemovalPolicy.RETAIN)
        table.add_local_secondary_index(
            index_name=LEGACY_ORD_INDEX,
            sort_key=dynamodb.Attribute(name=ORD, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        return table
