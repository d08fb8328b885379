"""Settings read from the environment, in one place. The CDK stack sets the same names."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Environment variable names: the composition root and the CDK stack both use these.
ENV_RUNTIME = "KESTREL_RUNTIME"  # "local" (default) or "aws"
ENV_DATA_DIR = "KESTREL_DATA_DIR"
ENV_TABLE = "KESTREL_TABLE"
ENV_BUCKET = "KESTREL_BUCKET"
ENV_MAX_IMAGE_BYTES = "KESTREL_MAX_IMAGE_BYTES"
ENV_MAX_IMAGE_PIXELS = "KESTREL_MAX_IMAGE_PIXELS"
ENV_MAX_DECODED_BYTES = "KESTREL_MAX_DECODED_BYTES"
ENV_MAX_REQUEST_BYTES = "KESTREL_MAX_REQUEST_BYTES"
ENV_URL_TTL = "KESTREL_URL_TTL_SECONDS"
# Training flow (AWS): the queue, and what CreateTrainingJob needs.
ENV_QUEUE_URL = "KESTREL_QUEUE_URL"
ENV_TRAINING_IMAGE = "KESTREL_TRAINING_IMAGE_URI"
ENV_TRAINING_ROLE = "KESTREL_TRAINING_ROLE_ARN"
ENV_TRAINING_INSTANCE = "KESTREL_TRAINING_INSTANCE_TYPE"
ENV_TRAINING_MAX_SECONDS = "KESTREL_TRAINING_MAX_SECONDS"
# Mail: the sender, SES's configuration set (AWS), or an SMTP server (local, optional).
ENV_MAIL_FROM = "KESTREL_MAIL_FROM"
ENV_SES_CONFIGURATION_SET = "KESTREL_SES_CONFIGURATION_SET"
ENV_SMTP_HOST = "KESTREL_SMTP_HOST"
ENV_SMTP_PORT = "KESTREL_SMTP_PORT"
ENV_SMTP_USER = "KESTREL_SMTP_USER"
ENV_SMTP_PASSWORD = "KESTREL_SMTP_PASSWORD"
# Where the console is, for links in emails.
ENV_CONSOLE_URL = "KESTREL_CONSOLE_URL"
# The API's usage plan (AWS): `kestrel token create` puts each new owner's API key in it.
ENV_USAGE_PLAN_ID = "KESTREL_USAGE_PLAN_ID"
# Vision: where the converted backbone is cached, onnxruntime threads, classify's head cache.
ENV_MODEL_DIR = "KESTREL_MODEL_DIR"
ENV_ORT_THREADS = "KESTREL_ORT_THREADS"
ENV_HEAD_CACHE_MB = "KESTREL_HEAD_CACHE_MB"
# Fetching ``_url`` records: caps, and hosts exempt from the SSRF check (never set in production).
ENV_FETCH_MAX_BYTES = "KESTREL_FETCH_MAX_BYTES"
ENV_FETCH_TIMEOUT = "KESTREL_FETCH_TIMEOUT_SECONDS"
ENV_FETCH_ALLOW_HOSTS = "KESTREL_FETCH_ALLOW_HOSTS"
ENV_FETCH_BUDGET = "KESTREL_FETCH_BUDGET_SECONDS"
# The training job's SageMaker root (/opt/ml), moved by the local worker.
ENV_SM_ROOT = "KESTREL_SM_ROOT"

MB = 1024 * 1024

#: SQS receives of a train request before it moves to the dead-letter queue (the stack's
#: maxReceiveCount, infra.training.MAX_RECEIVE_COUNT); the launcher gives the version up on the last.
TRAIN_MAX_RECEIVES = 3


#: Variables a local worker process takes over from the gateway's environment, as Lambda gives a
#: function the environment of its configuration (fetch policy, cache sizes, Powertools switches).
_FUNCTION_ENVIRONMENT_PREFIXES = ("KESTREL_", "POWERTOOLS_", "AWS_")


def function_environment() -> dict[str, str]:
    """The environment a local Lambda look-alike process gets (see kestrel.local.pool)."""
    return {name: value for name, value in os.environ.items() if name.startswith(_FUNCTION_ENVIRONMENT_PREFIXES)}


def apply_function_environment(environment: dict[str, str]) -> None:
    """Install ``environment`` in this (worker) process: its function variables become exactly these."""
    for name in [name for name in os.environ if name.startswith(_FUNCTION_ENVIRONMENT_PREFIXES)]:
        if name not in environment:
            del os.environ[name]
    os.environ.update(environment)


def disable_powertools_metrics() -> None:
    """Powertools reads this switch when it flushes: locally no CloudWatch reads EMF metric lines."""
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {value}")
    return value


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if not value > 0:  # also refuses NaN
        raise ValueError(f"{name} must be positive, not {raw!r}")
    return value


def _host_list(name: str) -> frozenset[str]:
    # The same normalisation a URL's host gets, so "[::1]", "LocalHost." and "::1" all match.
    hosts = (
        h.strip().lower().removeprefix("[").removesuffix("]").rstrip(".") for h in os.environ.get(name, "").split(",")
    )
    return frozenset(hosts) - {""}


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int = 10 * MB
    max_image_pixels: int = 50_000_000
    # What one decoded picture may take in memory (vision.imagefile): a JPEG is decoded at the
    # size the model needs, other formats at full size, one at a time per slot.
    max_decoded_bytes: int = 200_000_000
    # A synchronous Lambda invocation carries at most 6 MB; keep headroom for the envelope.
    max_request_bytes: int = 6 * MB - 64 * 1024
    url_ttl_seconds: int = 3600
    max_page_size: int = 1000
    default_page_size: int = 50


@dataclass(frozen=True)
class TrainingSettings:
    queue_url: str = ""
    image_uri: str = ""
    role_arn: str = ""
    instance_type: str = "ml.m5.large"
    max_seconds: int = 3600
    max_receives: int = TRAIN_MAX_RECEIVES


@dataclass(frozen=True)
class MailSettings:
    sender: str = "kestrel@localhost"
    ses_configuration_set: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    console_url: str = "http://127.0.0.1:8000/"
    #: Tries per mail for a transient failure (beyond the client's own retries), with back-off
    #: doubling from ``retry_seconds``; a permanent refusal is tried once. Fits the launcher's
    #: 120 s and the finisher's 300 s even when SES throttles every try.
    attempts: int = 3
    retry_seconds: float = 2.0


@dataclass(frozen=True)
class VisionSettings:
    #: None: ~/.cache/kestrel/models (the Lambda image sets /opt/kestrel/models).
    model_dir: Path | None = None
    #: Lambda and the dev machines have 2 cores.
    ort_threads: int = 2
    #: Trained heads classify keeps in memory per process, in MB (LRU): a 10-label head is
    #: ~52 kB, so 256 MB hold ~5,000 such tasks beside the one shared backbone.
    head_cache_mb: int = 256

    @property
    def head_cache_bytes(self) -> int:
        return self.head_cache_mb * MB

    @classmethod
    def from_env(cls) -> VisionSettings:
        configured = os.environ.get(ENV_MODEL_DIR, "").strip()
        return cls(
            model_dir=Path(configured) if configured else None,
            ort_threads=_int(ENV_ORT_THREADS, cls.ort_threads),
            head_cache_mb=_int(ENV_HEAD_CACHE_MB, cls.head_cache_mb),
        )


@dataclass(frozen=True)
class FetchSettings:
    max_bytes: int = 10 * MB
    timeout_seconds: float = 10.0
    #: Hosts whose addresses may be private: local development and tests only (see infra/environment.py).
    allowed_hosts: frozenset[str] = frozenset()
    #: All the URLs of one classify together, under API Gateway's 29 s.
    budget_seconds: float = 20.0

    @classmethod
    def from_env(cls) -> FetchSettings:
        return cls(
            max_bytes=_int(ENV_FETCH_MAX_BYTES, cls.max_bytes),
            timeout_seconds=_float(ENV_FETCH_TIMEOUT, cls.timeout_seconds),
            allowed_hosts=_host_list(ENV_FETCH_ALLOW_HOSTS),
            budget_seconds=_float(ENV_FETCH_BUDGET, cls.budget_seconds),
        )


@dataclass(frozen=True)
class Settings:
    runtime: str
    data_dir: Path
    table: str
    bucket: str
    limits: Limits
    training: TrainingSettings = TrainingSettings()
    mail: MailSettings = MailSettings()
    usage_plan_id: str = ""
    vision: VisionSettings = VisionSettings()
    fetch: FetchSettings = FetchSettings()

    @classmethod
    def from_env(cls) -> Settings:
        runtime = os.environ.get(ENV_RUNTIME, "local").strip().lower()
        if runtime not in ("local", "aws"):
            raise ValueError(f"{ENV_RUNTIME} must be 'local' or 'aws', not {runtime!r}")
        limits = Limits(
            max_image_bytes=_int(ENV_MAX_IMAGE_BYTES, Limits.max_image_bytes),
            max_image_pixels=_int(ENV_MAX_IMAGE_PIXELS, Limits.max_image_pixels),
            max_decoded_bytes=_int(ENV_MAX_DECODED_BYTES, Limits.max_decoded_bytes),
            max_request_bytes=_int(ENV_MAX_REQUEST_BYTES, Limits.max_request_bytes),
            url_ttl_seconds=_int(ENV_URL_TTL, Limits.url_ttl_seconds),
        )
        return cls(
            runtime=runtime,
            data_dir=Path(os.environ.get(ENV_DATA_DIR, "data")).resolve(),
            table=os.environ.get(ENV_TABLE, ""),
            bucket=os.environ.get(ENV_BUCKET, ""),
            limits=limits,
            training=TrainingSettings(
                queue_url=os.environ.get(ENV_QUEUE_URL, ""),
                image_uri=os.environ.get(ENV_TRAINING_IMAGE, ""),
                role_arn=os.environ.get(ENV_TRAINING_ROLE, ""),
                instance_type=os.environ.get(ENV_TRAINING_INSTANCE, TrainingSettings.instance_type),
                max_seconds=_int(ENV_TRAINING_MAX_SECONDS, TrainingSettings.max_seconds),
            ),
            mail=MailSettings(
                sender=os.environ.get(ENV_MAIL_FROM, MailSettings.sender),
                ses_configuration_set=os.environ.get(ENV_SES_CONFIGURATION_SET, ""),
                smtp_host=os.environ.get(ENV_SMTP_HOST, ""),
                smtp_port=_int(ENV_SMTP_PORT, MailSettings.smtp_port),
                smtp_user=os.environ.get(ENV_SMTP_USER, ""),
                smtp_password=os.environ.get(ENV_SMTP_PASSWORD, ""),
                console_url=os.environ.get(ENV_CONSOLE_URL, MailSettings.console_url),
            ),
            usage_plan_id=os.environ.get(ENV_USAGE_PLAN_ID, "").strip(),
            vision=VisionSettings.from_env(),
            fetch=FetchSettings.from_env(),
        )


def sagemaker_root() -> Path:
    """The training job's root: /opt/ml on SageMaker, a temporary folder under the local worker."""
    return Path(os.environ.get(ENV_SM_ROOT) or "/opt/ml")
