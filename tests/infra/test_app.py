"""The entry point the CDK CLI runs (app.py + cdk.json), and the context settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.synth import REPO_ROOT, cdk_json_context, require_node

require_node()

from infra.images import NO_ATTESTATIONS_ENV, attestation_problem  # noqa: E402
from infra.settings import CONTEXT_KEYS, Settings, SettingsError  # noqa: E402


def _run_app(
    tmp_path: Path, context: dict[str, Any], attestations_off: str | None = "1"
) -> subprocess.CompletedProcess[str]:
    """app.py as `cdk synth` runs it: context in CDK_CONTEXT_JSON, output in CDK_OUTDIR, and the
    shell's BUILDX_NO_DEFAULT_ATTESTATIONS (docs/operations.md has deployers export it)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_", NO_ATTESTATIONS_ENV))},
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(tmp_path),
    }
    if attestations_off is not None:
        env[NO_ATTESTATIONS_ENV] = attestations_off
    return subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_app_py_synthesises_offline_without_credentials(tmp_path: Path) -> None:
    result = _run_app(tmp_path, {**cdk_json_context(), "sesSender": "kestrel@example.com", "stage": "staging"})
    assert result.returncode == 0, result.stderr[-3000:]
    template = json.loads((tmp_path / "Kestrel-staging.template.json").read_text())
    assert {"ApiUrl", "ConsoleUrl", "TableName", "BucketName", "Region"} <= set(template["Outputs"])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["artifacts"]["Kestrel-staging"]["environment"] == "aws://unknown-account/unknown-region"


def test_app_py_explains_a_missing_sender(tmp_path: Path) -> None:
    result = _run_app(tmp_path, cdk_json_context())
    assert result.returncode == 2
    assert "sesSender is required" in result.stderr
    assert "-c sesSender=" in result.stderr


@pytest.mark.parametrize("value", [None, "0", "yes"])
def test_app_py_refuses_to_build_images_lambda_would_refuse(tmp_path: Path, value: str | None) -> None:
    """Without BUILDX_NO_DEFAULT_ATTESTATIONS=1 (which the CDK CLI passes on to `docker build`),
    Docker may push an OCI index with a provenance attestation: Lambda refuses it at deploy time."""
    context = {**cdk_json_context(), "sesSender": "kestrel@example.com"}
    result = _run_app(tmp_path, context, attestations_off=value)
    assert result.returncode == 2
    assert "BUILDX_NO_DEFAULT_ATTESTATIONS=1" in result.stderr
    assert "image manifest media type not supported" in result.stderr
    assert not (tmp_path / "manifest.json").exists()  # nothing synthesised


def test_attestation_setting_reads_values_as_buildx_does() -> None:
    for value in ("1", "true", "TRUE", "True", "t"):
        assert attestation_problem({NO_ATTESTATIONS_ENV: value}) is None, value
    for environ in ({}, {NO_ATTESTATIONS_ENV: "0"}, {NO_ATTESTATIONS_ENV: "false"}, {NO_ATTESTATIONS_ENV: "on"}):
        problem = attestation_problem(environ)
        assert problem is not None and "docs/operations.md" in problem


def test_cdk_json_runs_app_py_and_only_knows_documented_keys() -> None:
    cdk = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert cdk["app"].endswith("python app.py")
    for key in cdk["context"]:
        assert key in CONTEXT_KEYS or key.startswith("@aws-cdk"), key
    assert cdk["context"]["stage"] == "dev"
    docs = (REPO_ROOT / "docs" / "operations.md").read_text()
    for key in CONTEXT_KEYS:
        assert f"`{key}`" in docs, f"docs/operations.md does not explain the context key {key}"


def test_a_renamed_context_key_is_an_error_not_a_no_op(tmp_path: Path) -> None:
    result = _run_app(tmp_path, {**cdk_json_context(), "sesSender": "kestrel@example.com", "monthlyQuota": "5000"})
    assert result.returncode == 2
    assert "monthlyQuota was renamed" in result.stderr and "ownerMonthlyQuota" in result.stderr


def test_settings_defaults() -> None:
    settings = Settings.from_mapping({"sesSender": "kestrel@example.com"})
    assert settings.create_ses_identity
    assert not Settings.from_mapping({"sesSender": "a@b.co", "sesIdentity": "existing"}).create_ses_identity
    assert Settings.from_mapping({"sesSender": "a@b.co"}).keep_legacy_table  # an upgrade never loses the old table
    assert not Settings.from_mapping({"sesSender": "a@b.co", "legacyTable": "drop"}).keep_legacy_table
    assert (settings.owner_rate_limit, settings.owner_burst_limit, settings.owner_monthly_quota) == (10, 20, 1_000_000)
    assert settings.stage == "dev" and settings.is_dev
    assert settings.arm64
    assert settings.classify_memory_mb == 3008
    assert settings.classify_provisioned_concurrency == 0
    assert not Settings.from_mapping({"sesSender": "a@b.co", "stage": "prod"}).is_dev


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "sesSender is required"),
        ({"sesSender": "not-an-address"}, "plain e-mail address"),
        ({"sesSender": "a@b.co", "stage": "Prod!"}, "stage must be"),
        ({"sesSender": "a@b.co", "domain": "kestrel.example.com"}, "needs certificateArn"),
        (
            {
                "sesSender": "a@b.co",
                "domain": "kestrel.example.com",
                "certificateArn": "arn:aws:acm:eu-west-1:1:certificate/x",
            },
            "us-east-1",
        ),
        ({"sesSender": "a@b.co", "certificateArn": "arn:aws:acm:us-east-1:1:certificate/x"}, "only used with domain"),
        ({"sesSender": "a@b.co", "classifyMemory": "128"}, "classifyMemory must be between"),
        ({"sesSender": "a@b.co", "classifyProvisionedConcurrency": "many"}, "whole number"),
        ({"sesSender": "a@b.co", "lambdaArchitecture": "riscv"}, "arm64 or x86_64"),
        ({"sesSender": "a@b.co", "trainingInstanceType": "m5.large"}, "SageMaker type"),
        ({"sesSender": "a@b.co", "corsOrigins": "example.com"}, "corsOrigins"),
        ({"sesSender": "a@b.co", "alarmEmail": "ops"}, "alarmEmail"),
        ({"sesSender": "a@b.co", "sesIdentity": "reuse"}, "sesIdentity must be create"),
        ({"sesSender": "a@b.co", "ownerRateLimit": "80"}, "ownerRateLimit .80. is above apiRateLimit .50."),
        ({"sesSender": "a@b.co", "ownerBurstLimit": "0"}, "ownerBurstLimit must be between"),
        ({"sesSender": "a@b.co", "ownerMonthlyQuota": "lots"}, "ownerMonthlyQuota must be a whole number"),
        ({"sesSender": "a@b.co", "legacyTable": "delete"}, "legacyTable must be keep"),
    ],
)
def test_settings_refuse_bad_context(values: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_mapping(values)
