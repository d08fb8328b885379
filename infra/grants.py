"""Least-privilege grants written out action by action.

CDK's ``grant_read_write`` helpers hand out wildcard actions (``s3:GetObject*``, ``s3:List*``,
``s3:DeleteObject*``) on the whole bucket. Kestrel's roles each get the exact S3 / DynamoDB calls
their code makes (see kestrel.adapters.s3_blobs / dynamo_items), on their key prefixes only.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs

# The calls DynamoItemStore makes. TransactWriteItems/TransactGetItems are not IAM actions: a
# transaction is authorised per item as Put/Update/Delete/ConditionCheck.
TABLE_READ = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query")
TABLE_WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem")

# S3BlobStore: get/head -> GetObject, put -> PutObject (also what a presigned PUT is signed
# for), delete -> DeleteObject.
OBJECT_READ = ("s3:GetObject",)
OBJECT_WRITE = ("s3:PutObject",)
OBJECT_DELETE = ("s3:DeleteObject",)


def grant_table(grantee: iam.IGrantable, table: dynamodb.ITable, index_arn: str, *, write: bool) -> None:
    actions = TABLE_READ + (TABLE_WRITE if write else ())
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=list(actions), resources=[table.table_arn, index_arn])
    )


def grant_objects(grantee: iam.IGrantable, bucket: s3.IBucket, actions: Iterable[str], patterns: Iterable[str]) -> None:
    """``actions`` on the objects whose keys match ``patterns`` (e.g. ``images/*``)."""
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=sorted(set(actions)),
            resources=[bucket.arn_for_objects(pattern) for pattern in patterns],
        )
    )


def grant_list(grantee: iam.IGrantable, bucket: s3.IBucket, prefixes: Iterable[str]) -> None:
    """ListBucket under ``prefixes``. Without ListBucket a HEAD of a missing key answers 403 instead
    of 404, which the blob store's ``exists()`` would read as an error. ``IfExists``: that HEAD's
    implicit list check carries no ``s3:prefix``; explicit listings must stay under ``prefixes``."""
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLikeIfExists": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
        )
    )


#: What Lambda's SQS poller (an event source mapping) calls with the function's role: AWS's
#: managed AWSLambdaSQSQueueExecutionRole has exactly these. (CDK's SqsEventSource also grants
#: GetQueueUrl and ChangeMessageVisibility, which neither Lambda nor Kestrel calls.)
QUEUE_CONSUME = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


def grant_send_messages(grantee: iam.IGrantable, queue: sqs.IQueue) -> None:
    """SendMessage only (CDK's ``grant_send_messages`` adds GetQueueAttributes and GetQueueUrl,
    which no Kestrel code calls: the queue URL comes from the environment)."""
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[queue.queue_arn])
    )


def grant_consume_messages(grantee: iam.IGrantable, queue: sqs.IQueue) -> None:
    """What an SQS event source mapping needs to poll ``queue`` for the function (QUEUE_CONSUME)."""
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=list(QUEUE_CONSUME), resources=[queue.queue_arn])
    )
