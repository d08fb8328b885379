"""tests/infra: the CDK app synthesised offline, once per session per configuration (a synth takes
a few seconds), then asserted with aws_cdk.assertions. Every test here carries the ``infra`` marker
(``pytest -m infra`` or ``pytest tests/infra``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.synth import Synth, synthesize

HERE = Path(__file__).resolve().parent

SES_SENDER = "kestrel@example.com"
DEV_CONTEXT = {"sesSender": SES_SENDER}
PROD_CONTEXT = {
    "stage": "prod",
    "sesSender": SES_SENDER,
    "domain": "kestrel.example.com",
    "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0123abcd",
    "alarmEmail": "ops@example.com",
    "classifyProvisionedConcurrency": "2",
    "classifyMemory": "4096",
    "lambdaArchitecture": "x86_64",
    "corsOrigins": "https://app.example.org",
}
#: The other choices of the settings that change resources: an SES identity verified already,
#: per-owner limits of one's own, and no legacy (layout-1) item table.
EXISTING_IDENTITY_CONTEXT = {
    "stage": "staging",
    "sesSender": SES_SENDER,
    "sesIdentity": "existing",
    "ownerRateLimit": "5",
    "ownerBurstLimit": "8",
    "ownerMonthlyQuota": "25000",
    "legacyTable": "drop",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "infra: synthesises the CDK app offline and checks the template")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.infra)


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Defaults of cdk.json (stage dev, arm64) and an empty console folder."""
    web = tmp_path_factory.mktemp("web-empty")
    (web / ".gitkeep").write_text("")  # hidden files are not content
    return synthesize(DEV_CONTEXT, web, tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Every optional setting on, and a console with files to deploy."""
    web = tmp_path_factory.mktemp("web")
    (web / "index.html").write_text("<!doctype html><title>Kestrel</title>")
    (web / "app.js").write_text("console.log('kestrel')")
    return synthesize(PROD_CONTEXT, web, tmp_path_factory.mktemp("cdk-prod"))


@pytest.fixture(scope="session")
def existing_identity(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """sesIdentity=existing and per-owner limits set by context."""
    web = tmp_path_factory.mktemp("web-existing")
    (web / ".gitkeep").write_text("")
    return synthesize(EXISTING_IDENTITY_CONTEXT, web, tmp_path_factory.mktemp("cdk-existing"))
