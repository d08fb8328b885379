"""The console: the static app in ``web/`` on a private S3 bucket behind CloudFront (origin
access control), told where the API is by a ``config.json`` deployed next to it."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from infra.nag import acknowledge
from infra.settings import Settings

#: Where the console finds the API: ``{"apiUrl": "https://.../recognition/v2/"}``. Without it
#: (the local gateway) the console talks to its own origin.
CONFIG_FILE = "config.json"


def has_content(web_dir: Path) -> bool:
    """True when ``web_dir`` holds at least one file that is not hidden (``.gitkeep``...)."""
    if not web_dir.is_dir():
        return False
    return any(
        path.is_file() and not any(part.startswith(".") for part in path.relative_to(web_dir).parts)
        for path in web_dir.rglob("*")
    )


class Console(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, logs_bucket: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Site",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            server_access_logs_bucket=logs_bucket,
            server_access_logs_prefix="s3/console/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        certificate = (
            acm.Certificate.from_certificate_arn(self, "Certificate", settings.certificate_arn)
            if settings.domain and settings.certificate_arn
            else None
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Cdn",
            comment=f"Kestrel console ({settings.stage})",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
                compress=True,
            ),
            default_root_object="index.html",
            domain_names=[settings.domain] if settings.domain else None,
            certificate=certificate,
            # Only meaningful with a custom certificate (CloudFront fixes the default one's policy).
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if certificate else None,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,  # North America + Europe edges: cheapest
            enable_logging=True,
            log_bucket=logs_bucket,
            log_file_prefix="cloudfront/",
        )
        self.origin = f"https://{settings.domain or self.distribution.distribution_domain_name}"
        self.url = f"{self.origin}/"
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "A console for a global API: no country is blocked by default.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "Static files only (the API has its own throttling); a CloudFront web ACL must live "
            "in us-east-1 and costs from 5 USD a month. docs/operations.md shows how to add one.",
        )
        if not settings.domain:
            acknowledge(
                self.distribution,
                "AwsSolutions-CFR4",
                "Without the domain context CloudFront serves *.cloudfront.net with its default "
                "certificate, whose security policy CloudFront fixes (TLSv1); with a domain the "
                "distribution uses TLSv1.2_2021.",
            )

    def deploy(self, web_dir: Path, api_url: str) -> s3_deployment.BucketDeployment | None:
        """Upload ``web_dir`` and ``config.json``, and invalidate the CDN; nothing to do while
        ``web_dir`` has no files (the console is not written yet).

        CDK's deployment handler would grant itself wildcard actions (``s3:GetObject*``,
        ``s3:List*``, ``s3:DeleteObject*``...) and ``cloudfront:CreateInvalidation`` on ``*``;
        it gets an immutable role instead, with the calls it makes written out below."""
        if not has_content(web_dir):
            return None
        stack = Stack.of(self)
        files = s3_assets.Asset(self, "WebFiles", path=str(web_dir), exclude=[".*", f"/{CONFIG_FILE}"])
        log_group = logs.LogGroup(
            self, "DeployLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
        )
        role = iam.Role(
            self,
            "DeployRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Kestrel console deployment: copy web/ into the site bucket, invalidate the CDN",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            )
        )
        # The staged zips in CDK's bootstrap asset bucket (web/ and the rendered config.json).
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[files.bucket.arn_for_objects("*.zip")])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[self.bucket.arn_for_objects("*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket", "s3:GetBucketLocation"], resources=[self.bucket.bucket_arn])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"],
                resources=[
                    stack.format_arn(
                        service="cloudfront",
                        region="",
                        resource="distribution",
                        resource_name=self.distribution.distribution_id,
                    )
                ],
            )
        )
        deployment = s3_deployment.BucketDeployment(
            self,
            "Files",
            sources=[
                s3_deployment.Source.bucket(files.bucket, files.s3_object_key),
                s3_deployment.Source.json_data(CONFIG_FILE, {"apiUrl": api_url}),
            ],
            destination_bucket=self.bucket,
            distribution=self.distribution,
            distribution_paths=["/*"],
            prune=True,
            memory_limit=512,
            role=role.without_policy_updates(),
            log_group=log_group,
        )
        for construct in stack.node.children:
            if construct.node.id.startswith("Custom::CDKBucketDeployment"):
                acknowledge(
                    construct,
                    "AwsSolutions-L1",
                    "CDK's own deployment handler: its runtime is pinned by aws-cdk-lib and runs "
                    "only during `cdk deploy`; upgrading aws-cdk-lib upgrades it.",
                )
        return deployment
