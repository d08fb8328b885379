"""The Kestrel stack: wires the constructs of each concern together, and the app around it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, CfnOutput, Environment, Stack, Tags
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.api import Api
from infra.console import Console
from infra.data import Data
from infra.functions import KestrelFunctions
from infra.iam_review import acknowledge_scoped_wildcards
from infra.nag import add_nag
from infra.notifications import Notifications
from infra.observability import Observability
from infra.settings import Settings
from infra.training import Training

REPO_ROOT = Path(__file__).resolve().parent.parent


class KestrelStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        repo_root: Path,
        web_dir: Path,
        env: Environment | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env,
            description=f"Kestrel trainable image recognition ({settings.stage})",
            termination_protection=not settings.is_dev,
        )
        self.settings = settings
        data = Data(self, "Data", settings=settings)
        notifications = Notifications(self, "Notifications", settings=settings)
        console = Console(self, "Console", settings=settings, logs_bucket=data.logs_bucket)
        functions = KestrelFunctions(self, "Functions", repo_root=repo_root, settings=settings)
        training = Training(
            self,
            "Training",
            repo_root=repo_root,
            settings=settings,
            data=data,
            notifications=notifications,
            functions=functions,
            console_url=console.url,
        )
        cors_origins = [console.origin, *settings.cors_origins]
        api = Api(
            self,
            "Api",
            settings=settings,
            data=data,
            functions=functions,
            queue=training.queue,
            cors_origins=cors_origins,
        )
        self.console_deployment = console.deploy(web_dir, api.url)
        # The console PUTs large images straight to presigned S3 URLs (over the 6 MB API cap).
        data.bucket.add_cors_rule(
            allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.GET, s3.HttpMethods.HEAD],
            allowed_origins=cors_origins,
            allowed_headers=["Content-Type", "Content-MD5", "x-amz-*"],
            max_age=600,
        )
        self.observability = Observability(
            self,
            "Observability",
            settings=settings,
            api=api,
            training=training,
            functions=functions.functions,
        )
        self.data, self.api, self.training, self.console = data, api, training, console
        self.functions = functions.functions

        # What an operator needs after a deploy (docs/operations.md uses these names).
        CfnOutput(self, "Region", value=self.region, description="AWS_REGION for `kestrel token`")
        CfnOutput(self, "ApiUrl", value=api.url, description="Base URL of the recognition API")
        CfnOutput(self, "ConsoleUrl", value=console.url, description="The web console")
        CfnOutput(self, "TableName", value=data.table.table_name, description="KESTREL_TABLE for `kestrel token`")
        CfnOutput(self, "BucketName", value=data.bucket.bucket_name, description="KESTREL_BUCKET")
        if data.legacy_table is not None:
            CfnOutput(
                self,
                "LegacyTableName",
                value=data.legacy_table.table_name,
                description="the item table before the partition layout: `kestrel table migrate --source` it",
            )
        CfnOutput(self, "TrainQueueUrl", value=training.queue.queue_url)
        CfnOutput(
            self,
            "DashboardName",
            value=self.observability.dashboard.dashboard_name,
            description="CloudWatch dashboard",
        )
        CfnOutput(self, "AlarmTopicArn", value=self.observability.topic.topic_arn)
        CfnOutput(self, "SesConfigurationSet", value=notifications.configuration_set.configuration_set_name)
        CfnOutput(
            self,
            "UsagePlanId",
            value=api.usage_plan.usage_plan_id,
            description="KESTREL_USAGE_PLAN_ID for `kestrel token create` (each owner's API key joins it)",
        )
        acknowledge_scoped_wildcards(self)


def build_app(
    context: Mapping[str, Any] | None = None,
    *,
    repo_root: Path = REPO_ROOT,
    web_dir: Path | None = None,
    outdir: str | None = None,
) -> tuple[App, KestrelStack]:
    """The CDK app with the Kestrel stack and cdk-nag. ``context`` adds to (or overrides) the
    context the CDK CLI passes (cdk.json and ``-c``); tests pass it directly."""
    app = App(context=dict(context) if context is not None else None, outdir=outdir)
    settings = Settings.from_node(app.node)
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    # With credentials the CLI sets these; without (tests, offline synth) the stack stays
    # environment-agnostic.
    env = Environment(account=account, region=region) if account and region else None
    stack = KestrelStack(
        app,
        f"Kestrel-{settings.stage}",
        settings=settings,
        repo_root=repo_root,
        web_dir=web_dir or repo_root / "web",
        env=env,
    )
    Tags.of(app).add("project", "kestrel")
    Tags.of(app).add("kestrel:stage", settings.stage)
    add_nag(app)
    return app, stack
