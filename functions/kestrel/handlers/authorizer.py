"""Lambda authorizer (REQUEST type): ``Authorization: Token <key>`` -> the owner id.

API Gateway caches the policy per Authorization header, so the policy allows the whole API;
the api handler reads the owner from ``requestContext.authorizer.owner_id``. On AWS the answer
also carries ``usageIdentifierKey``, the owner's API key in the usage plan (the API's key source
is AUTHORIZER): API Gateway meters the owner's rate, burst and monthly quota by it. The local
gateway calls this same function before every authenticated request (and meters nothing)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from kestrel.composition import get_ports
from kestrel.domain.errors import Unauthenticated
from kestrel.metrics import count
from kestrel.store.accounts import identify

logger = Logger(service="kestrel-authorizer")
tracer = Tracer(service="kestrel-authorizer")
metrics = Metrics(namespace="Kestrel", service="authorizer")


class Unauthorized(Exception):
    """API Gateway answers 401 when an authorizer raises exactly 'Unauthorized'."""

    def __init__(self, detail: str) -> None:
        super().__init__("Unauthorized")
        self.detail = detail


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value) if value is not None else None
    return None


def _api_arn(method_arn: str) -> str:
    # arn:aws:execute-api:region:account:api-id/stage/METHOD/path -> .../stage/*/*
    parts = method_arn.split("/")
    return "/".join(parts[:2]) + "/*/*" if len(parts) >= 2 else method_arn


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    """The IAM policy for this request, or ``Unauthorized`` with a reason for humans."""
    try:
        caller = identify(get_ports().items, _header(event, "authorization"))
    except Unauthenticated as error:
        raise Unauthorized(error.detail) from None
    owner_id = caller.owner_id
    answer: dict[str, Any] = {
        "principalId": owner_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": _api_arn(str(event.get("methodArn", "*"))),
                }
            ],
        },
        "context": {"owner_id": owner_id},
    }
    if caller.usage_key is not None:
        answer["usageIdentifierKey"] = caller.usage_key
    return answer


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        policy = authorize(event)
    except Unauthorized as error:
        count(metrics, "AuthorizerDenied")
        logger.info("request refused", extra={"reason": error.detail})
        raise
    return policy
