"""``Settings.from_env``: the defaults, every KESTREL_* variable read, and bad values refused at
cold start with a message naming the variable. The environment is changed only through
``monkeypatch`` (undone after each test)."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest

from kestrel import config
from kestrel.config import (
    MB,
    FetchSettings,
    Limits,
    MailSettings,
    Settings,
    TrainingSettings,
    VisionSettings,
    sagemaker_root,
)

ENV_NAMES = sorted(value for name, value in vars(config).items() if name.startswith("ENV_") and isinstance(value, str))

INT_VARIABLES = [
    config.ENV_MAX_IMAGE_BYTES,
    config.ENV_MAX_IMAGE_PIXELS,
    config.ENV_MAX_REQUEST_BYTES,
    config.ENV_URL_TTL,
    config.ENV_TRAINING_MAX_SECONDS,
    config.ENV_SMTP_PORT,
    config.ENV_ORT_THREADS,
    config.ENV_HEAD_CACHE_MB,
    config.ENV_FETCH_MAX_BYTES,
]


def _exactly(message: str) -> str:
    """A ``match`` pattern for this very message, nothing more."""
    return f"^{re.escape(message)}$"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No KESTREL_* variable from the machine running the tests; the working folder is tmp_path."""
    for name in list(os.environ):
        if name.startswith("KESTREL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_variable_names_are_kestrels_and_distinct() -> None:
    assert ENV_NAMES
    assert all(name.startswith("KESTREL_") for name in ENV_NAMES)
    assert len(set(ENV_NAMES)) == len(ENV_NAMES)


def test_the_defaults(clean_environment: Path) -> None:
    settings = Settings.from_env()
    assert settings == Settings(
        runtime="local",
        data_dir=(clean_environment / "data").resolve(),
        table="",
        bucket="",
        limits=Limits(),
        training=TrainingSettings(),
        mail=MailSettings(),
        vision=VisionSettings(),
        fetch=FetchSettings(),
    )
    assert settings.limits == Limits(
        max_image_bytes=10 * MB,
        max_image_pixels=50_000_000,
        max_request_bytes=6 * MB - 64 * 1024,
        url_ttl_seconds=3600,
        max_page_size=1000,
        default_page_size=50,
    )
    assert settings.limits.max_request_bytes < 6 * MB  # under Lambda's synchronous payload cap
    assert (settings.training.instance_type, settings.training.max_seconds) == ("ml.m5.large", 3600)
    assert settings.training.max_receives == config.TRAIN_MAX_RECEIVES
    assert (settings.mail.sender, settings.mail.smtp_port, settings.mail.console_url) == (
        "kestrel@localhost",
        587,
        "http://127.0.0.1:8000/",
    )
    assert (settings.vision.model_dir, settings.vision.ort_threads, settings.vision.head_cache_mb) == (None, 2, 256)
    assert (settings.fetch.max_bytes, settings.fetch.timeout_seconds, settings.fetch.allowed_hosts) == (
        10 * MB,
        10.0,
        frozenset(),
    )
    assert sagemaker_root() == Path("/opt/ml")


def test_every_variable_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    values = {
        config.ENV_RUNTIME: " AWS ",
        config.ENV_DATA_DIR: str(tmp_path / "somewhere" / ".." / "store"),
        config.ENV_TABLE: "kestrel-table",
        config.ENV_BUCKET: "kestrel-bucket",
        config.ENV_MAX_IMAGE_BYTES: "1000",
        config.ENV_MAX_IMAGE_PIXELS: "2000",
        config.ENV_MAX_DECODED_BYTES: "5000",
        config.ENV_MAX_REQUEST_BYTES: "3000",
        config.ENV_URL_TTL: "60",
        config.ENV_QUEUE_URL: "https://sqs.example/queue",
        config.ENV_TRAINING_IMAGE: "123.dkr.ecr/kestrel:1",
        config.ENV_TRAINING_ROLE: "arn:aws:iam::123:role/train",
        config.ENV_TRAINING_INSTANCE: "ml.g4dn.xlarge",
        config.ENV_TRAINING_MAX_SECONDS: "7200",
        config.ENV_MAIL_FROM: "noreply@example.com",
        config.ENV_SES_CONFIGURATION_SET: "kestrel-set",
        config.ENV_SMTP_HOST: "smtp.example.com",
        config.ENV_SMTP_PORT: "2525",
        config.ENV_SMTP_USER: "mailer",
        config.ENV_SMTP_PASSWORD: "s3cret",
        config.ENV_CONSOLE_URL: "https://console.example.com/",
        config.ENV_USAGE_PLAN_ID: " abc123 ",
        config.ENV_MODEL_DIR: str(tmp_path / "models"),
        config.ENV_ORT_THREADS: "4",
        config.ENV_HEAD_CACHE_MB: "3",
        config.ENV_FETCH_MAX_BYTES: "4096",
        config.ENV_FETCH_TIMEOUT: "2.5",
        config.ENV_FETCH_BUDGET: "7.5",
        config.ENV_FETCH_ALLOW_HOSTS: " LocalHost. , [::1],,127.0.0.1 ",
        config.ENV_SM_ROOT: str(tmp_path / "ml"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)

    settings = Settings.from_env()

    assert (settings.runtime, settings.data_dir, settings.table, settings.bucket) == (
        "aws",
        (tmp_path / "store").resolve(),
        "kestrel-table",
        "kestrel-bucket",
    )
    assert (
        settings.limits.max_image_bytes,
        settings.limits.max_image_pixels,
        settings.limits.max_decoded_bytes,
        settings.limits.max_request_bytes,
        settings.limits.url_ttl_seconds,
    ) == (1000, 2000, 5000, 3000, 60)
    assert settings.training == TrainingSettings(
        queue_url="https://sqs.example/queue",
        image_uri="123.dkr.ecr/kestrel:1",
        role_arn="arn:aws:iam::123:role/train",
        instance_type="ml.g4dn.xlarge",
        max_seconds=7200,
    )
    assert settings.mail == MailSettings(
        sender="noreply@example.com",
        ses_configuration_set="kestrel-set",
        smtp_host="smtp.example.com",
        smtp_port=2525,
        smtp_user="mailer",
        smtp_password="s3cret",
        console_url="https://console.example.com/",
    )
    assert settings.vision == VisionSettings(model_dir=tmp_path / "models", ort_threads=4, head_cache_mb=3)
    assert settings.fetch == FetchSettings(
        max_bytes=4096,
        timeout_seconds=2.5,
        allowed_hosts=frozenset({"localhost", "::1", "127.0.0.1"}),
        budget_seconds=7.5,
    )
    assert settings.usage_plan_id == "abc123"
    assert sagemaker_root() == tmp_path / "ml"
    # The table above names every variable kestrel.config declares.
    assert sorted(values) == ENV_NAMES


@pytest.mark.parametrize("name", ENV_NAMES)
def test_no_declared_variable_is_ignored(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Setting any declared variable to a valid value changes what the configuration says."""
    before = (Settings.from_env(), sagemaker_root())
    monkeypatch.setenv(name, "aws" if name == config.ENV_RUNTIME else "7")
    assert (Settings.from_env(), sagemaker_root()) != before


@pytest.mark.parametrize("name", INT_VARIABLES)
@pytest.mark.parametrize("raw", ["ten", "1.5", "1e3", "0x10"])
def test_a_whole_number_variable_refuses_other_text(monkeypatch: pytest.MonkeyPatch, name: str, raw: str) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(ValueError, match=_exactly(f"{name} must be a whole number, not {raw!r}")):
        Settings.from_env()


@pytest.mark.parametrize("name", INT_VARIABLES)
@pytest.mark.parametrize("raw", ["0", "-1", " -300 "])
def test_a_whole_number_variable_must_be_positive(monkeypatch: pytest.MonkeyPatch, name: str, raw: str) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(ValueError, match=_exactly(f"{name} must be positive, not {int(raw)}")):
        Settings.from_env()


@pytest.mark.parametrize("name", INT_VARIABLES)
def test_a_blank_whole_number_variable_means_its_default(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    default = Settings.from_env()
    monkeypatch.setenv(name, "   ")
    assert Settings.from_env() == default
    monkeypatch.setenv(name, " 12 ")  # spaces around a number are fine
    assert Settings.from_env() != default


@pytest.mark.parametrize(
    ("raw", "message"), [("soon", "must be a number, not 'soon'"), ("0", "must be positive, not '0'")]
)
def test_the_fetch_timeout_must_be_a_positive_number(monkeypatch: pytest.MonkeyPatch, raw: str, message: str) -> None:
    monkeypatch.setenv(config.ENV_FETCH_TIMEOUT, raw)
    with pytest.raises(ValueError, match=_exactly(f"{config.ENV_FETCH_TIMEOUT} {message}")):
        Settings.from_env()


@pytest.mark.parametrize("raw", ["-2.5", "nan", "NaN", "-inf"])
def test_the_fetch_timeout_refuses_negative_and_nan(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(config.ENV_FETCH_TIMEOUT, raw)
    with pytest.raises(ValueError, match=_exactly(f"{config.ENV_FETCH_TIMEOUT} must be positive, not '{raw}'")):
        FetchSettings.from_env()


def test_a_fractional_fetch_timeout_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.ENV_FETCH_TIMEOUT, "0.25")
    timeout = FetchSettings.from_env().timeout_seconds
    assert timeout == 0.25 and not math.isnan(timeout)


@pytest.mark.parametrize(("raw", "runtime"), [("local", "local"), ("aws", "aws"), (" Local ", "local"), ("AWS", "aws")])
def test_the_runtime_is_local_or_aws_in_any_case(monkeypatch: pytest.MonkeyPatch, raw: str, runtime: str) -> None:
    monkeypatch.setenv(config.ENV_RUNTIME, raw)
    assert Settings.from_env().runtime == runtime


@pytest.mark.parametrize("raw", ["lambda", "local,aws", " gcp "])
def test_any_other_runtime_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(config.ENV_RUNTIME, raw)
    expected = f"KESTREL_RUNTIME must be 'local' or 'aws', not {raw.strip().lower()!r}"
    with pytest.raises(ValueError, match=_exactly(expected)):
        Settings.from_env()


def test_vision_settings_on_their_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert VisionSettings.from_env() == VisionSettings(model_dir=None, ort_threads=2, head_cache_mb=256)
    monkeypatch.setenv(config.ENV_MODEL_DIR, "   ")
    assert VisionSettings.from_env().model_dir is None  # blank: the default cache folder
    monkeypatch.setenv(config.ENV_MODEL_DIR, f" {tmp_path} ")
    monkeypatch.setenv(config.ENV_ORT_THREADS, "1")
    assert VisionSettings.from_env() == VisionSettings(model_dir=tmp_path, ort_threads=1, head_cache_mb=256)
    monkeypatch.setenv(config.ENV_HEAD_CACHE_MB, "none")
    with pytest.raises(ValueError, match=_exactly("KESTREL_HEAD_CACHE_MB must be a whole number, not 'none'")):
        VisionSettings.from_env()


def test_fetch_settings_on_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    assert FetchSettings.from_env() == FetchSettings()
    monkeypatch.setenv(config.ENV_FETCH_ALLOW_HOSTS, "[FE80::1], Example.COM., , ")
    monkeypatch.setenv(config.ENV_FETCH_MAX_BYTES, "10")
    assert FetchSettings.from_env() == FetchSettings(
        max_bytes=10, timeout_seconds=10.0, allowed_hosts=frozenset({"fe80::1", "example.com"})
    )
    monkeypatch.setenv(config.ENV_FETCH_ALLOW_HOSTS, " , ,")
    assert FetchSettings.from_env().allowed_hosts == frozenset()


def test_a_relative_data_dir_is_made_absolute(monkeypatch: pytest.MonkeyPatch, clean_environment: Path) -> None:
    monkeypatch.setenv(config.ENV_DATA_DIR, "here/data")
    data_dir = Settings.from_env().data_dir
    assert data_dir.is_absolute()
    assert data_dir == (clean_environment / "here" / "data").resolve()


def test_an_empty_sagemaker_root_means_opt_ml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.ENV_SM_ROOT, "")
    assert sagemaker_root() == Path("/opt/ml")


def test_nothing_is_cached_between_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.ENV_TABLE, "first")
    assert Settings.from_env().table == "first"
    monkeypatch.setenv(config.ENV_TABLE, "second")
    assert Settings.from_env().table == "second"
