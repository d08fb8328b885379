"""Training: the train-request queue (+ DLQ) and its launcher, the SageMaker execution role and
training image, and the EventBridge rule that hands finished jobs to the finisher."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Duration, IgnoreMode, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.data import EMBEDDINGS, IMAGES, JOBS, MODELS, Data
from infra.environment import Handler
from infra.functions import FunctionSpec, KestrelFunctions
from infra.grants import (
    OBJECT_READ,
    OBJECT_WRITE,
    grant_consume_messages,
    grant_list,
    grant_objects,
    grant_send_messages,
    grant_table,
)
from infra.nag import acknowledge
from infra.notifications import Notifications
from infra.settings import Settings
from kestrel import config

#: SageMaker job names Kestrel creates (kestrel.store.lifecycle.job_name); IAM and the
#: EventBridge rule are scoped to them.
JOB_PREFIX = "kestrel-"
TRAINING_DOCKERFILE = "training/Dockerfile"
#: The training image's build context is the repository root too: the job runs the same
#: kestrel.vision code as classify (one copy, DESIGN.md §2).
TRAINING_CONTEXT_EXCLUDE = [
    "*",
    "!requirements.txt",
    "!pyproject.toml",
    "!README.md",
    "!functions",
    "!training",
    "functions/*.egg-info",
    "**/__pycache__",
    "**/*.pyc",
]
TRAINING_EVENT_SOURCE = "aws.sagemaker"
TRAINING_EVENT_TYPE = "SageMaker Training Job State Change"
FINAL_STATUSES = ("Completed", "Failed", "Stopped")
#: A train request that fails this many launches goes to the DLQ (and alarms). The launcher reads
#: the same constant to mark the version Failed on the last one.
MAX_RECEIVE_COUNT = config.TRAIN_MAX_RECEIVES

LAUNCHER = FunctionSpec(512, Duration.seconds(120), "Kestrel: train request -> SageMaker training job")
FINISHER = FunctionSpec(1024, Duration.seconds(300), "Kestrel: finished SageMaker job -> model version")


class Training(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repo_root: Path,
        settings: Settings,
        data: Data,
        notifications: Notifications,
        functions: KestrelFunctions,
        console_url: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        # -- queue ------------------------------------------------------------------------
        self.dead_letters = sqs.Queue(
            self,
            "TrainRequestsDlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "TrainRequests",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # AWS's advice for Lambda sources: at least 6x the function timeout, so a message is
            # not redelivered while a (retried) launch is still running.
            visibility_timeout=Duration.seconds(6 * LAUNCHER.timeout.to_seconds()),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=MAX_RECEIVE_COUNT, queue=self.dead_letters),
        )
        # Failed deliveries of completion events (EventBridge -> finisher) and finisher runs that
        # failed all their retries land here, so no finished job is silently lost.
        self.event_dead_letters = sqs.Queue(
            self,
            "FinisherDlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )

        # -- the job: image and execution role -------------------------------------------
        dockerfile = repo_root / TRAINING_DOCKERFILE
        if not dockerfile.is_file():
            raise FileNotFoundError(
                f"{dockerfile} does not exist yet: the SageMaker training image is built from it "
                "(with the repository root as build context). It belongs to the training work "
                "(issues 3 and 4); the stack cannot be synthesised without it."
            )
        self.image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(repo_root),
            file=TRAINING_DOCKERFILE,
            platform=ecr_assets.Platform.LINUX_AMD64,  # SageMaker's ml.m5/ml.c5 hosts are x86_64
            exclude=TRAINING_CONTEXT_EXCLUDE,
            ignore_mode=IgnoreMode.DOCKER,
        )
        # Only the launcher may pass this role (iam:PassRole below), and only to SageMaker.
        self.role = iam.Role(
            self,
            "SageMakerRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Kestrel training jobs ({settings.stage}): its bucket prefixes only",
        )
        bucket = data.bucket
        grant_objects(self.role, bucket, OBJECT_READ, [f"{JOBS}*", f"{IMAGES}*"])
        grant_objects(self.role, bucket, OBJECT_READ + OBJECT_WRITE, [f"{EMBEDDINGS}*"])
        grant_objects(self.role, bucket, OBJECT_WRITE, [f"{JOBS}*/output/*"])
        grant_list(self.role, bucket, [JOBS, IMAGES, EMBEDDINGS])
        log_group = "/aws/sagemaker/TrainingJobs"
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=log_group,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"{log_group}:log-stream:{JOB_PREFIX}*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        self.image.repository.grant_pull(self.role)

        # -- launcher: queue -> manifest + CreateTrainingJob + mail -----------------------
        self.launcher = functions.add(
            Handler.LAUNCHER,
            LAUNCHER,
            {
                config.ENV_RUNTIME: "aws",
                config.ENV_TABLE: data.table.table_name,
                config.ENV_BUCKET: bucket.bucket_name,
                config.ENV_TRAINING_IMAGE: self.image.image_uri,
                config.ENV_TRAINING_ROLE: self.role.role_arn,
                config.ENV_TRAINING_INSTANCE: settings.training_instance_type,
                config.ENV_TRAINING_MAX_SECONDS: str(settings.training_max_seconds),
                config.ENV_MAIL_FROM: notifications.sender,
                config.ENV_SES_CONFIGURATION_SET: notifications.configuration_set.configuration_set_name,
                config.ENV_CONSOLE_URL: console_url,
            },
        )
        grant_table(self.launcher, data.table, data.index_arn, write=True)
        grant_objects(self.launcher, bucket, OBJECT_WRITE, [f"{JOBS}*"])
        training_jobs = stack.format_arn(service="sagemaker", resource="training-job", resource_name=f"{JOB_PREFIX}*")
        self.launcher.add_to_role_policy(
            # Tags on CreateTrainingJob need sagemaker:AddTags as well.
            iam.PolicyStatement(actions=["sagemaker:CreateTrainingJob", "sagemaker:AddTags"], resources=[training_jobs])
        )
        self.launcher.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        notifications.grant_send(self.launcher)
        # The mapping rather than CDK's SqsEventSource, whose grant adds calls nobody makes.
        grant_consume_messages(self.launcher, self.queue)
        self.launcher.add_event_source_mapping(
            "TrainRequests",
            event_source_arn=self.queue.queue_arn,
            batch_size=5,
            report_batch_item_failures=True,  # one bad request does not re-run the others
            max_concurrency=2,  # starting jobs is not urgent; stay far from SageMaker's API limits
        )

        # -- finisher: completion event -> model version + mail --------------------------
        self.finisher = functions.add(
            Handler.FINISHER,
            FINISHER,
            {
                config.ENV_RUNTIME: "aws",
                config.ENV_TABLE: data.table.table_name,
                config.ENV_BUCKET: bucket.bucket_name,
                config.ENV_MAIL_FROM: notifications.sender,
                config.ENV_SES_CONFIGURATION_SET: notifications.configuration_set.configuration_set_name,
                config.ENV_CONSOLE_URL: console_url,
            },
        )
        grant_table(self.finisher, data.table, data.index_arn, write=True)
        grant_objects(self.finisher, bucket, OBJECT_READ, [f"{JOBS}*"])
        grant_objects(self.finisher, bucket, OBJECT_READ + OBJECT_WRITE, [f"{MODELS}*"])
        grant_list(self.finisher, bucket, [JOBS, MODELS])
        # No SageMaker permission: the completion event carries the job's status, failure reason and
        # artefact path, and the finisher reads the result from S3 (kestrel.flow.finish).
        notifications.grant_send(self.finisher)
        # Lambda's own async retries (2) for a finisher that fails, then the DLQ.
        function = self.finisher
        assert isinstance(function, lambda_.Function)
        function.configure_async_invoke(retry_attempts=2, max_event_age=Duration.hours(6))
        cfn_function = function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        cfn_function.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(
            target_arn=self.event_dead_letters.queue_arn
        )
        grant_send_messages(function, self.event_dead_letters)

        self.rule = events.Rule(
            self,
            "JobFinished",
            description="Kestrel's SageMaker training jobs reaching a final state",
            event_pattern=events.EventPattern(
                source=[TRAINING_EVENT_SOURCE],
                detail_type=[TRAINING_EVENT_TYPE],
                detail={
                    "TrainingJobStatus": list(FINAL_STATUSES),
                    "TrainingJobName": [{"prefix": JOB_PREFIX}],
                },
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                function,
                dead_letter_queue=self.event_dead_letters,
                retry_attempts=8,
                max_event_age=Duration.hours(24),
            )
        )
        for queue in (self.dead_letters, self.event_dead_letters):
            acknowledge(queue, "AwsSolutions-SQS3", "This queue is itself a dead-letter queue (alarmed on depth).")
