"""The deployment's settings, read from CDK context (``cdk.json`` defaults, ``-c key=value``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # keeps this module importable without Node.js (jsii)
    from constructs import Node

#: Context keys, with what each means (docs/operations.md lists them for operators).
CONTEXT_KEYS: dict[str, str] = {
    "stage": "deployment name: dev | staging | prod (anything else counts as production-like)",
    "sesSender": "the From address of Kestrel's mails; SES verifies it (required)",
    "sesIdentity": "create (the stack makes the SES identity of sesSender) or existing (it is verified already)",
    "trainingInstanceType": "SageMaker instance type of training jobs",
    "trainingMaxSeconds": "hard stop of one training job, in seconds",
    "domain": "optional console host name (e.g. kestrel.example.com), needs certificateArn",
    "certificateArn": "ACM certificate in us-east-1 covering `domain` (for CloudFront)",
    "alarmEmail": "optional address subscribed to the alarm topic",
    "classifyMemory": "classify Lambda memory in MB (CPU grows with it)",
    "classifyProvisionedConcurrency": "warm classify instances kept ready (0 = none)",
    "lambdaArchitecture": "arm64 (Graviton, default) or x86_64",
    "apiRateLimit": "stage-wide steady requests per second",
    "apiBurstLimit": "stage-wide burst of requests",
    "classifyRateLimit": "steady requests per second on POST classify",
    "classifyBurstLimit": "burst of requests on POST classify",
    "ownerRateLimit": "steady requests per second of one owner (their API key in the usage plan)",
    "ownerBurstLimit": "burst of requests of one owner",
    "ownerMonthlyQuota": "requests per calendar month of one owner",
    "corsOrigins": "extra browser origins allowed besides the console (comma separated)",
    "legacyTable": "keep (the item table of the layout before lists stays in the stack, untouched, to migrate "
    "from) or drop (a new stage, or once `kestrel table migrate` has copied it)",
}

#: Context keys that were renamed: passing one is an error that names the new key, not a silent no-op.
RENAMED_KEYS: dict[str, str] = {
    "monthlyQuota": "ownerMonthlyQuota (the usage plan now meters each owner through their own API key)",
}
SES_IDENTITY_MODES = ("create", "existing")
LEGACY_TABLE_MODES = ("keep", "drop")

DEV_STAGES = frozenset({"dev"})
_STAGE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class SettingsError(ValueError):
    """A context value is missing or malformed; the message says which and how to pass it."""


@dataclass(frozen=True)
class Settings:
    stage: str
    ses_sender: str
    #: True: the stack creates the SES identity of ``ses_sender``; False: it is verified already
    #: (in this account and region, as an address or as its whole domain) and the stack leaves it alone.
    create_ses_identity: bool = True
    training_instance_type: str = "ml.m5.large"
    training_max_seconds: int = 3600
    domain: str | None = None
    certificate_arn: str | None = None
    alarm_email: str | None = None
    classify_memory_mb: int = 3008
    classify_provisioned_concurrency: int = 0
    arm64: bool = True
    api_rate_limit: int = 50
    api_burst_limit: int = 100
    classify_rate_limit: int = 20
    classify_burst_limit: int = 40
    owner_rate_limit: int = 10
    owner_burst_limit: int = 20
    owner_monthly_quota: int = 1_000_000
    cors_origins: tuple[str, ...] = ()
    #: True: the layout-1 table (``Items``, with its local index) stays in the stack, retained.
    keep_legacy_table: bool = True

    @property
    def is_dev(self) -> bool:
        """Dev stages may be destroyed with their data; every other stage keeps it."""
        return self.stage in DEV_STAGES

    @property
    def sender_domain(self) -> str:
        return self.ses_sender.rsplit("@", 1)[1]

    @classmethod
    def from_node(cls, node: Node) -> Settings:
        def get(key: str) -> Any:
            value = node.try_get_context(key)
            return None if value is None or (isinstance(value, str) and value.strip() == "") else value

        for old, new in RENAMED_KEYS.items():
            if get(old) is not None:
                raise SettingsError(f"the context key {old} was renamed: use {new}")
        return cls.from_mapping({key: get(key) for key in CONTEXT_KEYS})

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Settings:
        """Validate raw context values (strings from ``-c``, or JSON values from cdk.json)."""
        stage = str(values.get("stage") or "dev")
        if not _STAGE.match(stage):
            raise SettingsError(f"stage must be lowercase letters, digits and '-' (<= 20), not {stage!r}")
        sender = values.get("sesSender")
        if not sender:
            raise SettingsError(
                "sesSender is required: the address Kestrel mails from, e.g. "
                "`npx aws-cdk@2 deploy -c sesSender=kestrel@example.com`"
            )
        sender = str(sender).strip()
        if not _EMAIL.match(sender):
            raise SettingsError(f"sesSender must be a plain e-mail address, not {sender!r}")
        domain = _optional_str(values.get("domain"))
        certificate_arn = _optional_str(values.get("certificateArn"))
        if domain is not None:
            domain = domain.lower().rstrip(".")
            if not _HOST.match(domain):
                raise SettingsError(f"domain must be a host name like kestrel.example.com, not {domain!r}")
            if not certificate_arn or not certificate_arn.startswith("arn:aws:acm:us-east-1:"):
                raise SettingsError(
                    "domain needs certificateArn: an ACM certificate in us-east-1 (CloudFront's region) "
                    f"that covers {domain}"
                )
        elif certificate_arn is not None:
            raise SettingsError("certificateArn is only used with domain; pass both or neither")
        alarm_email = _optional_str(values.get("alarmEmail"))
        if alarm_email is not None and not _EMAIL.match(alarm_email):
            raise SettingsError(f"alarmEmail must be an e-mail address, not {alarm_email!r}")
        architecture = str(values.get("lambdaArchitecture") or "arm64")
        if architecture not in ("arm64", "x86_64"):
            raise SettingsError(f"lambdaArchitecture must be arm64 or x86_64, not {architecture!r}")
        instance_type = str(values.get("trainingInstanceType") or cls.training_instance_type)
        if not instance_type.startswith("ml."):
            raise SettingsError(
                f"trainingInstanceType must be a SageMaker type like ml.m5.large, not {instance_type!r}"
            )
        identity_mode = str(values.get("sesIdentity") or "create")
        if identity_mode not in SES_IDENTITY_MODES:
            raise SettingsError(
                f"sesIdentity must be create (the stack verifies sesSender) or existing (already verified "
                f"in SES), not {identity_mode!r}"
            )
        origins = tuple(
            origin.strip().rstrip("/") for origin in str(values.get("corsOrigins") or "").split(",") if origin.strip()
        )
        for origin in origins:
            if not re.match(r"^https?://[^/\s]+$", origin):
                raise SettingsError(f"corsOrigins entries must be like https://host[:port], not {origin!r}")
        legacy = str(values.get("legacyTable") or "keep")
        if legacy not in LEGACY_TABLE_MODES:
            raise SettingsError(
                f"legacyTable must be keep (the old item table stays, to migrate from) or drop, not {legacy!r}"
            )
        limits = _request_limits(values)
        return cls(
            stage=stage,
            ses_sender=sender,
            create_ses_identity=identity_mode == "create",
            training_instance_type=instance_type,
            training_max_seconds=_int(values, "trainingMaxSeconds", cls.training_max_seconds, 60, 432_000),
            domain=domain,
            certificate_arn=certificate_arn,
            alarm_email=alarm_email,
            classify_memory_mb=_int(values, "classifyMemory", cls.classify_memory_mb, 1024, 10_240),
            classify_provisioned_concurrency=_int(
                values, "classifyProvisionedConcurrency", cls.classify_provisioned_concurrency, 0, 100
            ),
            arm64=architecture == "arm64",
            **limits,
            cors_origins=origins,
            keep_legacy_table=legacy == "keep",
        )


def _request_limits(values: dict[str, Any]) -> dict[str, int]:
    """The stage's and each owner's request limits; an owner's may not exceed the stage's (the
    stage's would always apply first, so the owner's would be a number that never acts)."""
    limits = {
        "api_rate_limit": _int(values, "apiRateLimit", Settings.api_rate_limit, 1, 10_000),
        "api_burst_limit": _int(values, "apiBurstLimit", Settings.api_burst_limit, 1, 5_000),
        "classify_rate_limit": _int(values, "classifyRateLimit", Settings.classify_rate_limit, 1, 10_000),
        "classify_burst_limit": _int(values, "classifyBurstLimit", Settings.classify_burst_limit, 1, 5_000),
        "owner_rate_limit": _int(values, "ownerRateLimit", Settings.owner_rate_limit, 1, 10_000),
        "owner_burst_limit": _int(values, "ownerBurstLimit", Settings.owner_burst_limit, 1, 5_000),
        "owner_monthly_quota": _int(values, "ownerMonthlyQuota", Settings.owner_monthly_quota, 1, 2_000_000_000),
    }
    for owner_key, stage_key, owner, stage in (
        ("ownerRateLimit", "apiRateLimit", limits["owner_rate_limit"], limits["api_rate_limit"]),
        ("ownerBurstLimit", "apiBurstLimit", limits["owner_burst_limit"], limits["api_burst_limit"]),
    ):
        if owner > stage:
            raise SettingsError(
                f"{owner_key} ({owner}) is above {stage_key} ({stage}): the stage-wide limit would always "
                f"apply first; lower {owner_key} or raise {stage_key}"
            )
    return limits


def _optional_str(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _int(values: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    raw = values.get(key)
    if raw is None or raw == "":
        return default
    try:
        number = int(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{key} must be a whole number, not {raw!r}") from None
    if not low <= number <= high:
        raise SettingsError(f"{key} must be between {low} and {high}, not {number}")
    return number
