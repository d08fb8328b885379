"""The HTTP front: API Gateway (REST) with the token authorizer, and the api/classify/authorizer
Lambdas behind it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.data import IMAGES, MODELS, UPLOADS, Data
from infra.environment import ENV_MODEL_DIR, LAMBDA_MODEL_DIR, Handler
from infra.functions import FunctionSpec, KestrelFunctions
from infra.grants import (
    OBJECT_DELETE,
    OBJECT_READ,
    OBJECT_WRITE,
    grant_list,
    grant_objects,
    grant_send_messages,
    grant_table,
)
from infra.nag import acknowledge
from infra.settings import Settings
from kestrel import config

API_BASE = "recognition/v2"
#: Ximilar's account routes Kestrel serves (workspaces): to the api function, behind the authorizer.
ACCOUNT_BASE = "account/v2"
PUBLIC_GET_PATHS = (f"{API_BASE}/openapi.json", f"{API_BASE}/docs")
CLASSIFY_PATH = f"{API_BASE}/classify"
#: Similarity search describes sent images with the model: served by the classify function too.
SIMILAR_PATH = f"{API_BASE}/task/{{task_id}}/similar"
BINARY_MEDIA_TYPES = ("multipart/form-data", "image/*", "application/octet-stream")
AUTHORIZER_CACHE = Duration.minutes(5)  # also how long a revoked token may still work
UPLOAD_HINT = (
    "upload large images through a presigned URL: POST /recognition/v2/training-image/upload-url/, "
    "PUT the bytes to the returned url, then POST /recognition/v2/training-image/ with its upload_id"
)

# API Gateway's synchronous integration limit is 29 s: neither function may run longer.
API = FunctionSpec(1024, Duration.seconds(29), "Kestrel recognition API (everything but classify)")
AUTHORIZER = FunctionSpec(512, Duration.seconds(10), "Kestrel token authorizer")


def _detail(text: str) -> str:
    return json.dumps({"detail": text})


#: Where an operator reads about per-owner limits and API keys.
LIMITS_DOC = "docs/operations.md, 'Per-owner limits'"


def gateway_responses(settings: Settings) -> dict[str, tuple[str, str]]:
    """What API Gateway answers by itself (before or instead of a Lambda), shaped like the API's
    own errors: ``{"detail": "..."}``. ``$context.error.messageString`` is already a quoted JSON
    string. The 429s name the owner's limits from ``settings`` (the usage plan's numbers)."""
    return {
        "UNAUTHORIZED": (
            "401",
            _detail("Invalid or missing token: send the header 'Authorization: Token <your API key>'"),
        ),
        "ACCESS_DENIED": ("403", _detail("This token may not call this route")),
        # The authorizer accepted the token but named no API key of the usage plan: a token made
        # before the stack metered owners, until the operator runs `kestrel token keys`.
        "INVALID_API_KEY": (
            "403",
            _detail(
                "This token's account has no API key in the usage plan yet, so its requests cannot be "
                "metered; the operator of this Kestrel runs `kestrel token keys` once"
            ),
        ),
        "MISSING_AUTHENTICATION_TOKEN": (
            "404",
            _detail("No such route; the API reference is at /recognition/v2/docs/"),
        ),
        "REQUEST_TOO_LARGE": ("413", _detail(f"Request body over API Gateway's 10 MB limit; {UPLOAD_HINT}")),
        "THROTTLED": (
            "429",
            _detail(
                f"Too many requests: each account may send {settings.owner_rate_limit} per second (bursts of "
                f"{settings.owner_burst_limit}), and the service as a whole has its own ceiling; slow down "
                "and retry after a short pause"
            ),
        ),
        "QUOTA_EXCEEDED": (
            "429",
            _detail(
                f"This account's monthly quota of {settings.owner_monthly_quota:,} requests is used up; it "
                "renews with the next month (ask the operator for a larger quota)"
            ),
        ),
        "INTEGRATION_TIMEOUT": (
            "504",
            _detail(
                "The service took longer than 29 s to answer (request $context.requestId); retry, "
                "or send fewer records per call"
            ),
        ),
        "INTEGRATION_FAILURE": (
            "502",
            _detail(
                "The service could not take the request (request $context.requestId); a body over "
                f"6 MB cannot reach it: {UPLOAD_HINT}"
            ),
        ),
        # The authorizer raised: on a busy token table (throttled past the client's retries) as on a
        # bug. Either way the request itself was fine and may be sent again: 503 + Retry-After, like the API.
        "AUTHORIZER_FAILURE": (
            "503",
            _detail("Could not check the token right now (request $context.requestId); retry in 5 seconds"),
        ),
        "AUTHORIZER_CONFIGURATION_ERROR": (
            "500",
            _detail("Could not check the token (request $context.requestId); retry"),
        ),
        "DEFAULT_4XX": ("", '{"detail": $context.error.messageString}'),
        "DEFAULT_5XX": ("", _detail("Internal error (request $context.requestId); retry later")),
    }


#: Extra headers of some of those answers (values are API Gateway mapping expressions: quoted literals).
GATEWAY_RESPONSE_HEADERS: dict[str, dict[str, str]] = {"AUTHORIZER_FAILURE": {"Retry-After": "'5'"}}

#: Access log line: one JSON object per request (the requestId ties it to the Lambda logs).
ACCESS_LOG_FIELDS: dict[str, str] = {
    "requestId": "$context.requestId",
    "time": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "resource": "$context.resourcePath",
    "status": "$context.status",
    "bytes": "$context.responseLength",
    "latencyMs": "$context.responseLatency",
    "integrationLatencyMs": "$context.integration.latency",
    "integrationStatus": "$context.integration.status",
    "integrationError": "$context.integration.error",
    "owner": "$context.authorizer.principalId",
    "authorizerError": "$context.authorizer.error",
    "error": "$context.error.message",
    "traceId": "$context.xrayTraceId",
}


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        data: Data,
        functions: KestrelFunctions,
        queue: sqs.IQueue,
        cors_origins: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        store_env = {
            config.ENV_RUNTIME: "aws",
            config.ENV_TABLE: data.table.table_name,
            config.ENV_BUCKET: data.bucket.bucket_name,
        }
        bucket = data.bucket

        # -- functions ----------------------------------------------------------------------
        self.authorizer_function = functions.add(Handler.AUTHORIZER, AUTHORIZER, dict(store_env))
        grant_table(self.authorizer_function, data.table, data.index_arn, write=False)

        self.api_function = functions.add(Handler.API, API, {**store_env, config.ENV_QUEUE_URL: queue.queue_url})
        grant_table(self.api_function, data.table, data.index_arn, write=True)
        grant_objects(
            self.api_function,
            bucket,
            OBJECT_READ + OBJECT_WRITE + OBJECT_DELETE,
            [f"{IMAGES}*", f"{UPLOADS}*", f"{MODELS}*"],
        )
        grant_list(self.api_function, bucket, [IMAGES, UPLOADS, MODELS])
        grant_send_messages(self.api_function, queue)

        classify_spec = FunctionSpec(
            settings.classify_memory_mb,
            Duration.seconds(29),
            "Kestrel classify (onnxruntime; backbone baked into the image)",
        )
        self.classify_function = functions.add(
            Handler.CLASSIFY, classify_spec, {**store_env, ENV_MODEL_DIR: LAMBDA_MODEL_DIR}
        )
        grant_table(self.classify_function, data.table, data.index_arn, write=False)
        grant_objects(self.classify_function, bucket, OBJECT_READ, [f"{IMAGES}*", f"{MODELS}*"])
        grant_list(self.classify_function, bucket, [IMAGES, MODELS])
        # API Gateway calls the alias, so provisioned concurrency can be switched on and off
        # (context classifyProvisionedConcurrency) without touching the API.
        self.classify_alias = lambda_.Alias(
            self,
            "ClassifyLive",
            alias_name="live",
            version=self.classify_function.current_version,
            provisioned_concurrent_executions=settings.classify_provisioned_concurrency or None,
        )

        # -- REST API --------------------------------------------------------------------
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.ONE_MONTH if settings.is_dev else logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.DESTROY,
        )
        account_logging = self._account_logging_role()
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"kestrel-{settings.stage}",
            description="Kestrel recognition API (Ximilar recognition v2 compatible)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=list(BINARY_MEDIA_TYPES),
            min_compression_size=Size.kibibytes(1),
            cloud_watch_role=False,  # set explicitly below, with a scoped inline policy
            # Per-owner limits: the authorizer names the caller's API key (usageIdentifierKey), and
            # the usage plan below meters each key. Clients never send or see an API key.
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=list(cors_origins),
                allow_methods=apigw.Cors.ALL_METHODS,
                allow_headers=["Authorization", "Content-Type"],
                max_age=Duration.minutes(10),
            ),
            deploy_options=apigw.StageOptions(
                stage_name=settings.stage,
                throttling_rate_limit=settings.api_rate_limit,
                throttling_burst_limit=settings.api_burst_limit,
                method_options={
                    f"/{path}/POST": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=settings.classify_rate_limit,
                        throttling_burst_limit=settings.classify_burst_limit,
                    )
                    for path in (CLASSIFY_PATH, SIMILAR_PATH)
                },
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # would log request bodies and Authorization headers
                metrics_enabled=True,
                tracing_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(_access_log_format()),
            ),
        )
        self.rest_api.deployment_stage.node.add_dependency(account_logging)
        self.stage = self.rest_api.deployment_stage

        authorizer = apigw.RequestAuthorizer(
            self,
            "TokenAuthorizer",
            handler=self.authorizer_function,
            identity_sources=[apigw.IdentitySource.header("Authorization")],
            results_cache_ttl=AUTHORIZER_CACHE,
        )
        protected: dict[str, Any] = {
            "authorizer": authorizer,
            "authorization_type": apigw.AuthorizationType.CUSTOM,
            # Without it the usage plan meters nothing: only methods that require a key count.
            "api_key_required": True,
        }
        api_integration = apigw.LambdaIntegration(self.api_function, proxy=True, allow_test_invoke=False)
        classify_integration = apigw.LambdaIntegration(self.classify_alias, proxy=True, allow_test_invoke=False)

        base = self.rest_api.root.resource_for_path(API_BASE)
        proxy_method = base.add_resource("{proxy+}").add_method("ANY", api_integration, **protected)
        account_base = self.rest_api.root.resource_for_path(ACCOUNT_BASE)
        account_method = account_base.add_resource("{proxy+}").add_method("ANY", api_integration, **protected)
        classify_method = self.rest_api.root.resource_for_path(CLASSIFY_PATH).add_method(
            "POST", classify_integration, **protected
        )
        # POST task/{task_id}/similar goes to classify. API Gateway does not fall back to the
        # {proxy+} above when a more specific resource lacks the method, so every resource on the
        # way there sends ANY to the api function, as {proxy+} would.
        task = base.add_resource("task")
        one_task = task.add_resource("{task_id}")
        task_methods = [
            task.add_method("ANY", api_integration, **protected),
            one_task.add_method("ANY", api_integration, **protected),
            one_task.add_resource("{proxy+}").add_method("ANY", api_integration, **protected),
        ]
        similar_method = one_task.add_resource("similar").add_method("POST", classify_integration, **protected)
        # The API reference is public, like the local gateway's (kestrel.api.public). API
        # Gateway routes ".../docs/" to the ".../docs" resource (a path part cannot be empty).
        for path in PUBLIC_GET_PATHS:
            method = self.rest_api.root.resource_for_path(path).add_method(
                "GET", api_integration, authorization_type=apigw.AuthorizationType.NONE
            )
            acknowledge(method, "AwsSolutions-APIG4", "The OpenAPI document and its reference page are public.")
            acknowledge(method, "AwsSolutions-COG4", "The OpenAPI document and its reference page are public.")
        for method in (proxy_method, account_method, classify_method, similar_method, *task_methods):
            acknowledge(
                method,
                "AwsSolutions-COG4",
                "Ximilar-compatible API keys ('Authorization: Token <key>') checked by the Lambda "
                "authorizer against hashed tokens in DynamoDB; Cognito cannot issue such keys.",
            )

        for response_type, (status, template) in gateway_responses(settings).items():
            self.rest_api.add_gateway_response(
                response_type.lower().replace("_", "-"),
                type=apigw.ResponseType.of(response_type),
                status_code=status or None,
                # Browsers only show the detail to the console when CORS allows it; the
                # preflight above is what restricts callers to the console's origins.
                response_headers={
                    "Access-Control-Allow-Origin": "'*'",
                    **GATEWAY_RESPONSE_HEADERS.get(response_type, {}),
                },
                templates={"application/json": template},
            )

        # Each owner's API key (made by `kestrel token create`, kestrel.adapters.apigw_usage) joins
        # this plan: its throttle and quota apply per key, i.e. per owner, on top of the stage's
        # limits above. AWS applies both on a best-effort basis (docs/operations.md).
        self.usage_plan = self.rest_api.add_usage_plan(
            "UsagePlan",
            name=f"kestrel-{settings.stage}",
            description=f"Kestrel {settings.stage}: each owner's API key; see {LIMITS_DOC}",
            throttle=apigw.ThrottleSettings(
                rate_limit=settings.owner_rate_limit, burst_limit=settings.owner_burst_limit
            ),
            quota=apigw.QuotaSettings(limit=settings.owner_monthly_quota, period=apigw.Period.MONTH),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.stage)],
        )

        self.url = f"{self.rest_api.url}{API_BASE}/"
        self._acknowledge()

    def _account_logging_role(self) -> apigw.CfnAccount:
        """API Gateway writes execution and access logs with ONE role per account and region.
        CDK's ``cloud_watch_role=True`` attaches the AWS managed policy; this role gets the same
        log actions inline. Both are retained on delete: other APIs in the account use the
        setting too."""
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "AccountLoggingRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway account setting: push execution and access logs",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogGroups",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                    "logs:GetLogEvents",
                    "logs:FilterLogEvents",
                ],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        role.apply_removal_policy(RemovalPolicy.RETAIN)
        account = apigw.CfnAccount(self, "AccountLogging", cloud_watch_role_arn=role.role_arn)
        account.apply_removal_policy(RemovalPolicy.RETAIN)
        account.node.add_dependency(role)
        return account

    def _acknowledge(self) -> None:
        acknowledge(
            self.rest_api,
            "AwsSolutions-APIG2",
            "Lambda proxy integration: the handler validates every body and parameter (Powertools "
            "+ Pydantic) and answers 400 with a detail; API Gateway models would duplicate the "
            "OpenAPI schema and answer in another error shape.",
        )
        acknowledge(
            self.rest_api,
            "AwsSolutions-APIG3",
            "No WAF by default (from 5 USD a month plus per-rule fees); stage and classify "
            "throttling bound abuse. docs/operations.md shows how to attach a web ACL.",
        )


def _access_log_format() -> str:
    # Every value quoted: an absent value ("-") must not break the line's JSON.
    return json.dumps(ACCESS_LOG_FIELDS, separators=(",", ":"))
