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
ENV_MAX_REQUEST_BYTES = "KESTREL_MAX_REQUEST_BYTES"
ENV_URL_TTL = "KESTREL_URL_TTL_SECONDS"

MB = 1024 * 1024


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


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int = 10 * MB
    max_image_pixels: int = 50_000_000
    # A synchronous Lambda invocation carries at most 6 MB; keep headroom for the envelope.
    max_request_bytes: int = 6 * MB - 64 * 1024
    url_ttl_seconds: int = 3600
    max_page_size: int = 1000
    default_page_size: int = 50


@dataclass(frozen=True)
class Settings:
    runtime: str
    data_dir: Path
    table: str
    bucket: str
    limits: Limits

    @classmethod
    def from_env(cls) -> Settings:
        runtime = os.environ.get(ENV_RUNTIME, "local").strip().lower()
        if runtime not in ("local", "aws"):
            raise ValueError(f"{ENV_RUNTIME} must be 'local' or 'aws', not {runtime!r}")
        limits = Limits(
            max_image_bytes=_int(ENV_MAX_IMAGE_BYTES, Limits.max_image_bytes),
            max_image_pixels=_int(ENV_MAX_IMAGE_PIXELS, Limits.max_image_pixels),
            max_request_bytes=_int(ENV_MAX_REQUEST_BYTES, Limits.max_request_bytes),
            url_ttl_seconds=_int(ENV_URL_TTL, Limits.url_ttl_seconds),
        )
        return cls(
            runtime=runtime,
            data_dir=Path(os.environ.get(ENV_DATA_DIR, "data")).resolve(),
            table=os.environ.get(ENV_TABLE, ""),
            bucket=os.environ.get(ENV_BUCKET, ""),
            limits=limits,
        )
