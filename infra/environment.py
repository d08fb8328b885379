"""Which environment variables each Lambda handler reads, and which ones the stack leaves unset.

This is the one place where the stack and the handlers' composition root (``kestrel.config``,
``kestrel.composition``) meet: ``tests/infra`` checks that every function gets exactly the
names listed for its handler, and that every ``KESTREL_*`` name the package reads is either
listed here for a handler or deliberately left unset (with the reason).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from kestrel import config

ENV_MODEL_DIR: Final = config.ENV_MODEL_DIR
# Where the Lambda image keeps the converted backbone (the Dockerfile builds it there).
LAMBDA_MODEL_DIR: Final = "/opt/kestrel/models"


class Handler(StrEnum):
    """The five Lambda entry points, all in the same image (``functions/kestrel/handlers``)."""

    API = "kestrel.handlers.api.lambda_handler"
    CLASSIFY = "kestrel.handlers.classify.lambda_handler"
    AUTHORIZER = "kestrel.handlers.authorizer.lambda_handler"
    LAUNCHER = "kestrel.handlers.launcher.lambda_handler"
    FINISHER = "kestrel.handlers.finisher.lambda_handler"

    @property
    def short_name(self) -> str:
        """``api``, ``classify``...: the module name, used for construct ids and service names."""
        return self.value.split(".")[-2]


_STORE: Final = (config.ENV_RUNTIME, config.ENV_TABLE, config.ENV_BUCKET)
_MAIL: Final = (config.ENV_MAIL_FROM, config.ENV_SES_CONFIGURATION_SET, config.ENV_CONSOLE_URL)

#: The ``KESTREL_*`` variables the stack sets on each function, no more and no fewer.
HANDLER_ENV: Final[dict[Handler, frozenset[str]]] = {
    Handler.API: frozenset({*_STORE, config.ENV_QUEUE_URL}),
    Handler.CLASSIFY: frozenset({*_STORE, ENV_MODEL_DIR}),
    Handler.AUTHORIZER: frozenset(_STORE),
    Handler.LAUNCHER: frozenset(
        {
            *_STORE,
            *_MAIL,
            config.ENV_TRAINING_IMAGE,
            config.ENV_TRAINING_ROLE,
            config.ENV_TRAINING_INSTANCE,
            config.ENV_TRAINING_MAX_SECONDS,
        }
    ),
    Handler.FINISHER: frozenset({*_STORE, *_MAIL}),
}

#: Names the package reads that the stack leaves unset on purpose, and why.
NOT_SET_ON_AWS: Final[dict[str, str]] = {
    config.ENV_DATA_DIR: "local runtime only: the SQLite file and blob folder",
    config.ENV_SMTP_HOST: "local runtime only: AWS mails through SES",
    config.ENV_SMTP_PORT: "local runtime only: AWS mails through SES",
    config.ENV_SMTP_USER: "local runtime only: AWS mails through SES",
    config.ENV_SMTP_PASSWORD: "local runtime only: AWS mails through SES",
    config.ENV_MAX_IMAGE_BYTES: "tunable; kestrel.config.Limits' default fits Lambda",
    config.ENV_MAX_IMAGE_PIXELS: "tunable; kestrel.config.Limits' default fits Lambda",
    config.ENV_MAX_DECODED_BYTES: "tunable; the 200 MB default fits the api (1 GB) and classify (3 GB) Lambdas",
    config.ENV_MAX_REQUEST_BYTES: "tunable; the default already sits under Lambda's 6 MB request cap",
    config.ENV_URL_TTL: "tunable; presigned URLs also end with the Lambda role session",
    config.ENV_ORT_THREADS: "tunable; the default (2) matches the 2 vCPUs Lambda gives 1,770-3,538 MB functions",
    config.ENV_HEAD_CACHE_MB: "tunable; classify's default (256 MB of heads, LRU) fits the 3 GB classify Lambda",
    config.ENV_SM_ROOT: "training job only (not a Lambda): SageMaker's /opt/ml, moved by the local worker",
    config.ENV_FETCH_MAX_BYTES: "tunable; kestrel.config.FetchSettings' default cap applies",
    config.ENV_FETCH_TIMEOUT: "tunable; kestrel.config.FetchSettings' default timeout applies",
    config.ENV_FETCH_BUDGET: "tunable; kestrel.config.FetchSettings' default (20 s) sits under API Gateway's 29 s",
    config.ENV_FETCH_ALLOW_HOSTS: "FORBIDDEN in production: it lets _url fetches reach private hosts",
    config.ENV_USAGE_PLAN_ID: "the operator's `kestrel token` commands only: no function creates API keys",
    "KESTREL_ENDPOINT": "the kestrel CLI's client setting (which API to talk to), never a handler's",
    "KESTREL_TOKEN": "the kestrel CLI's client setting (its API token), never a handler's",
    "KESTREL_WORKSPACE": "the kestrel CLI's client setting (which workspace it works in), never a handler's",
}

#: Names no deployed function may ever carry (tests assert their absence).
FORBIDDEN_ON_AWS: Final = frozenset({config.ENV_FETCH_ALLOW_HOSTS})

#: The Powertools settings every function gets (the service name is added per function).
METRICS_NAMESPACE: Final = "Kestrel"
