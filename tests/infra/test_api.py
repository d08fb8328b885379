"""The HTTP front: routes and who may call them, throttling, logs, and API Gateway's own answers."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.synth import Synth, require_node

require_node()

from aws_cdk.assertions import Match  # noqa: E402

from tests.infra.template_tools import api_methods, functions_by_handler, logical_id_of, render  # noqa: E402

API = "kestrel.handlers.api.lambda_handler"
CLASSIFY = "kestrel.handlers.classify.lambda_handler"
AUTHORIZER = "kestrel.handlers.authorizer.lambda_handler"


def _integration_target(method: dict[str, Any]) -> str:
    """The Lambda function (or alias) an AWS_PROXY integration invokes, as a rendered intrinsic."""
    integration = method["Integration"]
    assert integration["Type"] == "AWS_PROXY"
    assert integration["IntegrationHttpMethod"] == "POST"
    return render(integration["Uri"])


def test_rest_api_accepts_binary_uploads(dev: Synth) -> None:
    dev.template.has_resource_properties(
        "AWS::ApiGateway::RestApi",
        {
            "BinaryMediaTypes": ["multipart/form-data", "image/*", "application/octet-stream"],
            "EndpointConfiguration": {"Types": ["REGIONAL"]},
        },
    )


def test_authorizer_is_a_cached_request_authorizer_on_the_authorization_header(dev: Synth) -> None:
    authorizer_id, _ = functions_by_handler(dev)[AUTHORIZER]
    (authorizer,) = dev.resources("AWS::ApiGateway::Authorizer").values()
    properties = authorizer["Properties"]
    assert properties["Type"] == "REQUEST"
    assert properties["IdentitySource"] == "method.request.header.Authorization"
    assert properties["AuthorizerResultTtlInSeconds"] == 300
    assert f"<{authorizer_id}.Arn>" in render(properties["AuthorizerUri"])


#: The resources on the way to similarity search, each sending every method to the api function.
TASK_BRANCH = (
    ("/recognition/v2/task", "ANY"),
    ("/recognition/v2/task/{task_id}", "ANY"),
    ("/recognition/v2/task/{task_id}/{proxy+}", "ANY"),
)
SIMILAR = ("/recognition/v2/task/{task_id}/similar", "POST")


def test_routes_and_their_authorization(dev: Synth) -> None:
    functions = functions_by_handler(dev)
    api_id, classify_id = functions[API][0], functions[CLASSIFY][0]
    alias_id = logical_id_of(dev, "ApiClassifyLive", "AWS::Lambda::Alias")
    (authorizer_id,) = dev.resources("AWS::ApiGateway::Authorizer")
    methods = api_methods(dev)
    non_preflight = {key: value for key, value in methods.items() if key[1] != "OPTIONS"}
    assert set(non_preflight) == {
        ("/recognition/v2/{proxy+}", "ANY"),
        ("/account/v2/{proxy+}", "ANY"),
        ("/recognition/v2/classify", "POST"),
        ("/recognition/v2/openapi.json", "GET"),
        ("/recognition/v2/docs", "GET"),
        *TASK_BRANCH,
        SIMILAR,
    }
    protected = (
        ("/recognition/v2/{proxy+}", "ANY"),
        ("/account/v2/{proxy+}", "ANY"),
        ("/recognition/v2/classify", "POST"),
        *TASK_BRANCH,
        SIMILAR,
    )
    for key in protected:
        method = methods[key]
        assert method["AuthorizationType"] == "CUSTOM", key
        assert method["AuthorizerId"] == {"Ref": authorizer_id}, key
    for key in (("/recognition/v2/openapi.json", "GET"), ("/recognition/v2/docs", "GET")):
        method = methods[key]
        assert method["AuthorizationType"] == "NONE", key
        assert "AuthorizerId" not in method, key
        assert f"<{api_id}.Arn>" in _integration_target(method), key
    assert f"<{api_id}.Arn>" in _integration_target(methods[("/recognition/v2/{proxy+}", "ANY")])
    assert f"<{api_id}.Arn>" in _integration_target(methods[("/account/v2/{proxy+}", "ANY")])  # workspaces
    for key in ("/recognition/v2/classify", "POST"), SIMILAR:
        classify_target = _integration_target(methods[key])
        assert f"<{alias_id}>" in classify_target, key  # the alias, so provisioned concurrency applies
        assert classify_id not in classify_target, key
    # Every other method of task/... still reaches the api function (API Gateway does not fall
    # back to recognition/v2/{proxy+} once it has matched the more specific task/ resources).
    for key in TASK_BRANCH:
        assert f"<{api_id}.Arn>" in _integration_target(methods[key]), key


def test_every_resource_answers_cors_preflights_without_a_token(dev: Synth) -> None:
    methods = api_methods(dev)
    paths = {path for path, _ in methods}
    for path in paths:
        preflight = methods[(path, "OPTIONS")]
        assert preflight["AuthorizationType"] == "NONE", path
        assert preflight["Integration"]["Type"] == "MOCK", path
        response = preflight["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
        assert "Authorization" in response["method.response.header.Access-Control-Allow-Headers"]
        assert "ConsoleCdn" in json.dumps(preflight), f"{path}: the console origin is not allowed"


def test_cors_origins_include_the_custom_domain_and_extra_origins(prod: Synth) -> None:
    preflight = api_methods(prod)[("/recognition/v2/classify", "OPTIONS")]
    text = json.dumps(preflight)
    assert "https://kestrel.example.com" in text
    assert "https://app.example.org" in text


def test_stage_throttling_logging_and_tracing(dev: Synth) -> None:
    (stage,) = dev.resources("AWS::ApiGateway::Stage").values()
    properties = stage["Properties"]
    assert properties["StageName"] == "dev"
    assert properties["TracingEnabled"] is True
    settings = {(s["ResourcePath"], s["HttpMethod"]): s for s in properties["MethodSettings"]}
    every = settings[("/*", "*")]
    assert (every["ThrottlingRateLimit"], every["ThrottlingBurstLimit"]) == (50, 100)
    assert every["LoggingLevel"] == "ERROR"
    assert every["MetricsEnabled"] is True
    assert every["DataTraceEnabled"] is False  # would log bodies and Authorization headers
    classify = settings[("/~1recognition~1v2~1classify", "POST")]
    assert (classify["ThrottlingRateLimit"], classify["ThrottlingBurstLimit"]) == (20, 40)
    similar = settings[("/~1recognition~1v2~1task~1{task_id}~1similar", "POST")]
    assert (similar["ThrottlingRateLimit"], similar["ThrottlingBurstLimit"]) == (20, 40)


def test_access_logs_are_one_json_object_per_request(dev: Synth) -> None:
    (stage,) = dev.resources("AWS::ApiGateway::Stage").values()
    access = stage["Properties"]["AccessLogSetting"]
    log_group_id = logical_id_of(dev, "ApiAccessLogs", "AWS::Logs::LogGroup")
    assert f"<{log_group_id}>" in render(access["DestinationArn"])
    line = json.loads(access["Format"])
    assert line["requestId"] == "$context.requestId"
    assert {"status", "latencyMs", "owner", "path", "ip", "integrationError"} <= set(line)
    dev.template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": Match.any_value()})


def test_account_logging_role_is_set_and_kept(dev: Synth) -> None:
    (account,) = dev.resources("AWS::ApiGateway::Account").values()
    assert account["DeletionPolicy"] == "Retain"  # other APIs in the account rely on the setting
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = dev.template_json["Resources"][role_id]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }
    assert "ManagedPolicyArns" not in role["Properties"]


def test_api_keys_come_from_the_authorizer(dev: Synth) -> None:
    """AUTHORIZER: API Gateway takes each request's API key from the authorizer's
    usageIdentifierKey (the owner's key); clients never send one."""
    (api,) = dev.resources("AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"


def test_every_protected_method_requires_an_api_key(dev: Synth) -> None:
    """A usage plan meters only methods that require a key: without it the plan does nothing."""
    for (path, verb), method in api_methods(dev).items():
        protected = method["AuthorizationType"] == "CUSTOM"
        assert method.get("ApiKeyRequired", False) is protected, (path, verb)
        if verb == "OPTIONS" or path.endswith(("/openapi.json", "/docs")):
            assert not protected, (path, verb)  # preflights and the public reference stay open


def test_usage_plan_meters_each_owner(dev: Synth, existing_identity: Synth) -> None:
    for synth, rate, burst, quota in ((dev, 10, 20, 1_000_000), (existing_identity, 5, 8, 25_000)):
        stage_id = logical_id_of(
            synth, f"ApiRestApiDeploymentStage{synth.stack.settings.stage}", "AWS::ApiGateway::Stage"
        )
        (plan,) = synth.resources("AWS::ApiGateway::UsagePlan").values()
        properties = plan["Properties"]
        assert properties["Throttle"] == {"RateLimit": rate, "BurstLimit": burst}
        assert properties["Quota"] == {"Limit": quota, "Period": "MONTH"}
        ((api_id, _),) = synth.resources("AWS::ApiGateway::RestApi").items()
        assert properties["ApiStages"] == [{"ApiId": {"Ref": api_id}, "Stage": {"Ref": stage_id}, "Throttle": {}}]
        # The keys are made per owner by `kestrel token create`, not by the stack.
        assert synth.resources("AWS::ApiGateway::ApiKey") == {}
        output = synth.template_json["Outputs"]["UsagePlanId"]
        assert output["Value"] == {"Ref": next(iter(synth.resources("AWS::ApiGateway::UsagePlan")))}


def test_over_the_limit_answers_name_the_owners_limits(dev: Synth, existing_identity: Synth) -> None:
    for synth, numbers in (
        (dev, ("10 per second", "bursts of 20", "1,000,000")),
        (existing_identity, ("5 per second", "bursts of 8", "25,000")),
    ):
        responses = {
            r["Properties"]["ResponseType"]: r["Properties"]
            for r in synth.resources("AWS::ApiGateway::GatewayResponse").values()
        }
        throttled = json.loads(responses["THROTTLED"]["ResponseTemplates"]["application/json"])["detail"]
        quota = json.loads(responses["QUOTA_EXCEEDED"]["ResponseTemplates"]["application/json"])["detail"]
        assert numbers[0] in throttled and numbers[1] in throttled
        assert numbers[2] in quota and "monthly quota" in quota
        assert responses["THROTTLED"]["StatusCode"] == responses["QUOTA_EXCEEDED"]["StatusCode"] == "429"
        missing_key = json.loads(responses["INVALID_API_KEY"]["ResponseTemplates"]["application/json"])["detail"]
        assert "kestrel token keys" in missing_key


EXPECTED_GATEWAY_RESPONSES = {
    "UNAUTHORIZED": "401",
    "ACCESS_DENIED": "403",
    "INVALID_API_KEY": "403",
    "MISSING_AUTHENTICATION_TOKEN": "404",
    "REQUEST_TOO_LARGE": "413",
    "THROTTLED": "429",
    "QUOTA_EXCEEDED": "429",
    "AUTHORIZER_FAILURE": "503",
    "AUTHORIZER_CONFIGURATION_ERROR": "500",
    "INTEGRATION_FAILURE": "502",
    "INTEGRATION_TIMEOUT": "504",
    "DEFAULT_4XX": None,
    "DEFAULT_5XX": None,
}


def test_api_gateway_errors_answer_like_the_api(dev: Synth) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in dev.resources("AWS::ApiGateway::GatewayResponse").values()
    }
    assert set(responses) == set(EXPECTED_GATEWAY_RESPONSES)
    for response_type, status in EXPECTED_GATEWAY_RESPONSES.items():
        properties = responses[response_type]
        assert properties.get("StatusCode") == status, response_type
        assert properties["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"
        if status == "503":
            assert properties["ResponseParameters"]["gatewayresponse.header.Retry-After"] == "'5'", response_type
        # As API Gateway renders it: messageString is a quoted JSON string, the rest plain text.
        rendered = (
            properties["ResponseTemplates"]["application/json"]
            .replace("$context.error.messageString", json.dumps('message "quoted"'))
            .replace("$context.requestId", "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")
        )
        body = json.loads(rendered)
        assert set(body) == {"detail"}, response_type
        assert isinstance(body["detail"], str) and body["detail"], response_type
    assert "upload-url" in responses["REQUEST_TOO_LARGE"]["ResponseTemplates"]["application/json"]


def test_outputs_give_the_api_url(dev: Synth) -> None:
    url = render(dev.template_json["Outputs"]["ApiUrl"]["Value"])
    assert url.startswith("https://<ApiRestApi")
    assert url.endswith("/recognition/v2/")


def test_classify_alias_has_provisioned_concurrency_only_when_asked(dev: Synth, prod: Synth) -> None:
    (dev_alias,) = dev.resources("AWS::Lambda::Alias").values()
    assert "ProvisionedConcurrencyConfig" not in dev_alias["Properties"]
    prod.template.has_resource_properties(
        "AWS::Lambda::Alias",
        {"Name": "live", "ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 2}},
    )
