"""Every boto3 client the AWS adapters use is made here, the same way.

* Retries: botocore's *standard* mode, ``MAX_ATTEMPTS`` tries in all, with truncated exponential
  back-off and full jitter (up to 1 s, 2 s, 4 s... after throttling; 25-50 ms steps after other
  transient errors) and a per-client retry quota, so an outage does not multiply the load. It
  retries throttling (ThrottlingException, ProvisionedThroughputExceededException, SlowDown,
  RequestLimitExceeded, 429...), 500/502/503/504 answers and connection or read timeouts.
* Timeouts fit Lambda: the API functions have 29 s (API Gateway's own limit), so no single
  call may hang for botocore's default 60 s; ``MAX_ATTEMPTS`` slow tries still fit in that.
* A transient failure that outlives the retries is raised as the ports' ``Unavailable`` (the API
  answers 503 with Retry-After; queue and event handlers fail so that AWS delivers again).
  Every other error stays the ``ClientError`` botocore raises, for the adapter to interpret.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from kestrel.ports.errors import Unavailable

RETRY_MODE = "standard"
MAX_ATTEMPTS = 4  # the first try and three retries
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 5.0

#: Error codes that mean "slow down" or "try again" (botocore's standard-mode lists).
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
    }
)
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})

#: How a user is told which part of Kestrel is busy (never the AWS service's name).
SERVICE_ROLES = {
    "dynamodb": "the database",
    "s3": "the file store",
    "sqs": "the training queue",
    "sagemaker": "the training service",
    "ses": "the mail service",
    "apigateway": "the API gateway",
}


def client_config(extra: Config | None = None) -> Config:
    """The retry and timeout configuration of every client, merged with a service's ``extra``."""
    config = Config(
        # botocore's "max_attempts" counts the retries only (attempts = it + 1); say what is meant.
        retries={"mode": RETRY_MODE, "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
    )
    return config.merge(extra) if extra is not None else config


def aws_client(service: str, extra: Config | None = None, **kwargs: Any) -> Any:
    """A boto3 client for ``service`` with :func:`client_config` and transient failures raised
    as ``Unavailable`` (after the retries)."""
    client = boto3.client(service, config=client_config(extra), **kwargs)
    raise_unavailable(client)
    return client


def raise_unavailable(client: Any) -> None:
    """Make ``client`` raise ``Unavailable`` for a throttled, failing or unreachable service once
    botocore has used up its retries (botocore emits these events after its retry loop)."""
    events = client.meta.events
    events.register("after-call", _after_call, unique_id="kestrel-unavailable-answer")
    events.register("after-call-error", _after_call_error, unique_id="kestrel-unavailable-exception")


def _role(event_name: str) -> str:
    # "after-call.dynamodb.PutItem" -> "dynamodb"
    parts = event_name.split(".")
    service = parts[1] if len(parts) > 1 else ""
    return SERVICE_ROLES.get(service, f"the AWS service {service or '(unknown)'}")


def _operation(event_name: str) -> str:
    return event_name.split(".")[-1]


def _after_call(http_response: Any, parsed: dict[str, Any], context: dict[str, Any], event_name: str, **_: Any) -> None:
    status = int(getattr(http_response, "status_code", 200))
    if status < 300:
        return
    error = parsed.get("Error") or {}
    code = str(context.get("error_code_override") or error.get("Code") or status)
    if code in TRANSIENT_CODES or status in TRANSIENT_STATUSES:
        attempts = (parsed.get("ResponseMetadata") or {}).get("RetryAttempts", 0) + 1
        message = str(error.get("Message") or "")
        reason = f"{_operation(event_name)}: {code} ({message}) after {attempts} attempts"
        raise Unavailable(_role(event_name), reason) from ClientError(parsed, _operation(event_name))


def _after_call_error(exception: BaseException, event_name: str, **_: Any) -> None:
    # Connection refused or reset, DNS, connect and read timeouts: botocore retried them already.
    if isinstance(exception, BotoConnectionError | HTTPClientError):
        reason = f"{_operation(event_name)}: {type(exception).__name__}: {exception}"
        raise Unavailable(_role(event_name), reason) from exception


class LazyClient:
    """boto3 clients are made on first use (a Lambda that never mails never pays for an SES
    client), by :func:`aws_client` like every Kestrel client."""

    service = ""
    _given: Any = None
    _made: Any = None

    @property
    def _client(self) -> Any:
        if self._given is not None:
            return self._given
        if self._made is None:
            self._made = aws_client(self.service)
        return self._made
