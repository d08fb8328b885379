"""The five Lambda functions: one container image, one entry point (CMD) each.

Why one image for all five rather than zips: classify needs onnxruntime + numpy + Pillow + the
converted backbone, which together leave too little of the 250 MB unzipped limit (see
docs/operations.md); and a zip with compiled wheels would need an aarch64 ``pip install`` at
synth time (network, or Docker bundling), which we refuse. One image keeps the code and the
dependency set identical in every function ("the same code" of DESIGN.md §1), is built once per
deploy, and is cached by Lambda; cold starts are dominated by Python imports, not image size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, IgnoreMode, RemovalPolicy
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.environment import HANDLER_ENV, METRICS_NAMESPACE, Handler
from infra.settings import Settings

#: The Lambda image's Dockerfile, relative to the repository root (its build context).
LAMBDA_DOCKERFILE = "functions/Dockerfile"

#: The build context is the repository root, cut down to what the image needs (Docker ignore
#: syntax, later lines win). CDK copies only this into cdk.out and hashes it: editing docs or
#: tests does not rebuild or redeploy the functions.
LAMBDA_CONTEXT_EXCLUDE = [
    "*",
    "!requirements.txt",
    "!functions",
    "functions/*.egg-info",
    "**/__pycache__",
    "**/*.pyc",
]


@dataclass(frozen=True)
class FunctionSpec:
    """How much of Lambda one handler gets."""

    memory_mb: int
    timeout: Duration
    description: str


class KestrelFunctions(Construct):
    """Builds the functions of the stack from the one image, each with its own least-privilege
    role (no managed policies), its own log group with retention, X-Ray tracing and Powertools
    settings."""

    def __init__(self, scope: Construct, construct_id: str, *, repo_root: Path, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        self._repo_root = repo_root
        self._settings = settings
        self.architecture = lambda_.Architecture.ARM_64 if settings.arm64 else lambda_.Architecture.X86_64
        self._platform = ecr_assets.Platform.LINUX_ARM64 if settings.arm64 else ecr_assets.Platform.LINUX_AMD64
        self.functions: dict[Handler, lambda_.Function] = {}
        dockerfile = repo_root / LAMBDA_DOCKERFILE
        if not dockerfile.is_file():
            raise FileNotFoundError(f"the Lambda image's Dockerfile is missing: {dockerfile}")

    def _code(self, handler: Handler) -> lambda_.DockerImageCode:
        # Identical asset properties for every handler: CDK stages, hashes and builds the image
        # once; only the image config's CMD differs per function.
        return lambda_.DockerImageCode.from_image_asset(
            str(self._repo_root),
            file=LAMBDA_DOCKERFILE,
            cmd=[handler.value],
            platform=self._platform,
            exclude=LAMBDA_CONTEXT_EXCLUDE,
            ignore_mode=IgnoreMode.DOCKER,
        )

    def add(self, handler: Handler, spec: FunctionSpec, environment: dict[str, str]) -> lambda_.Function:
        expected = HANDLER_ENV[handler]
        if set(environment) != expected:
            raise ValueError(
                f"{handler.short_name}: the stack must set exactly {sorted(expected)} "
                f"(infra/environment.py HANDLER_ENV), got {sorted(environment)}"
            )
        name = handler.short_name.capitalize()
        log_group = logs.LogGroup(
            self,
            f"{name}Logs",
            retention=logs.RetentionDays.ONE_WEEK if self._settings.is_dev else logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Kestrel {handler.short_name} Lambda ({self._settings.stage})",
        )
        # Logs go to this function's own group only (instead of AWSLambdaBasicExecutionRole's
        # account-wide logs:* grant).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        function = lambda_.DockerImageFunction(
            self,
            name,
            code=self._code(handler),
            description=spec.description,
            architecture=self.architecture,
            memory_size=spec.memory_mb,
            timeout=spec.timeout,
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment={**self._powertools_env(handler), **environment},
        )
        self.functions[handler] = function
        return function

    def _powertools_env(self, handler: Handler) -> dict[str, str]:
        return {
            "POWERTOOLS_SERVICE_NAME": f"kestrel-{handler.short_name}",
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "LOG_LEVEL": "DEBUG" if self._settings.is_dev else "INFO",
            # Events carry Authorization tokens and responses carry presigned URLs (bearer
            # credentials): keep both out of logs and X-Ray metadata.
            "POWERTOOLS_LOGGER_LOG_EVENT": "false",
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        }
