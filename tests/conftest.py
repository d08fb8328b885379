"""Shared fixtures: a real Kestrel server over HTTP, on the local runtime and on the AWS one (moto).

``api_server`` runs every test twice: once on SQLite + a folder, once on DynamoDB + S3 under
moto (marked ``aws``). Each test gets a fresh, empty service (start-up takes a few milliseconds
locally and well under a second under moto, so function scope keeps tests independent cheaply).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

import kestrel.composition as composition
from kestrel.composition import Ports, build_ports, set_ports
from kestrel.config import Limits, MailSettings, Settings, TrainingSettings
from kestrel.local.gateway import GatewayServer, make_server
from kestrel.local.powertools import quiet_local_powertools
from kestrel.store.accounts import create_token, ensure_owner
from tests.soak import record

# The tests run the handlers locally, in this process and in gateway workers: Powertools is set
# up for the local runtime here, explicitly, as `kestrel serve` does (no EMF lines on stdout, where
# the CLI tests read the CLI's output).
quiet_local_powertools()

# moto without three costs that grow with a test's size, outcomes unchanged (docs/testing.md);
# `-p no:tests.moto_speed` runs moto as it comes, to compare.
pytest_plugins = ["tests.moto_speed"]

OWNER_A = "owner-a@example.com"
AWS_REGION = "us-east-1"
AWS_TABLE = "kestrel-test"
AWS_BUCKET = "kestrel-test-blobs"
AWS_MAIL_FROM = "kestrel@example.com"

_OWN_TOKEN: Any = object()  # ``request(token=...)`` default: the server's own token


@dataclass
class RunningServer:
    """A Kestrel gateway serving in a background thread, with an owner and a token ready."""

    url: str  # "http://localhost:PORT/" (the ximilar client needs "localhost" in the endpoint)
    ports: Ports
    runtime: str  # "local" or "aws"
    token: str  # a token of owner A (OWNER_A)
    server: GatewayServer
    session: requests.Session = field(default_factory=requests.Session)

    def new_token(self, email: str, name: str = "") -> str:
        """A token for the owner with this email (created if new): another tenant."""
        owner = ensure_owner(self.ports.items, email)
        token, _ = create_token(self.ports.items, owner, name)
        return token

    def request(self, method: str, path: str, token: str | None = _OWN_TOKEN, **kwargs: Any) -> requests.Response:
        """``method`` on ``path`` (relative to ``url``, or a full URL) as owner A by default.

        ``token=None`` sends no Authorization header; any other string is sent as the token."""
        url = path if path.startswith(("http://", "https://")) else self.url + path.lstrip("/")
        headers = dict(kwargs.pop("headers", None) or {})
        token = self.token if token is _OWN_TOKEN else token
        if token is not None:
            headers.setdefault("Authorization", f"Token {token}")
        kwargs.setdefault("timeout", 60)
        return self.session.request(method, url, headers=headers, **kwargs)


@contextmanager
def running_server(ports: Ports, runtime: str, **server_options: Any) -> Iterator[RunningServer]:
    """Serve ``ports`` on a free port until the block ends; restores the previous process ports."""
    previous = composition._ports  # another server's ports (e.g. an outer fixture), put back after
    server = make_server(ports, host="127.0.0.1", port=0, **server_options)
    thread = threading.Thread(target=server.serve_forever, name=f"kestrel-{runtime}-{server.port}", daemon=True)
    thread.start()
    owner = ensure_owner(ports.items, OWNER_A)
    token, _ = create_token(ports.items, owner, "tests")
    running = RunningServer(f"http://localhost:{server.port}/", ports, runtime, token, server)
    try:
        yield running
    finally:
        running.session.close()
        server.close()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the gateway did not stop"
        set_ports(previous)


_SESSION_STARTED = time.monotonic()


def pytest_sessionfinish(session: pytest.Session) -> None:
    record("session", seconds=round(time.monotonic() - _SESSION_STARTED))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Under ``make soak``, count each suite's passed and failed tests into its soak record."""
    parts = report.nodeid.split("/")
    if len(parts) > 2 and parts[0] == "tests" and (report.when == "call" or report.failed):
        record(parts[1], tests_passed=int(report.passed), tests_failed=int(report.failed))


def local_settings(data_dir: Path, limits: Limits | None = None) -> Settings:
    return Settings(runtime="local", data_dir=data_dir, table="", bucket="", limits=limits or Limits())


@contextmanager
def aws_ports(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[Ports]:
    """Ports on DynamoDB + S3 under moto, with fake credentials: nothing can reach AWS."""
    from kestrel.adapters.dynamo_items import create_table

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    # moto's backends are not thread-safe (a transaction deep-copies dicts that another thread is
    # changing), while DynamoDB and S3 are. The gateway serves requests from several threads, so
    # moto handles one AWS call at a time, each atomically, as the real services appear to.
    lock = threading.Lock()
    process_request = BotocoreStubber.process_request

    def one_at_a_time(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return process_request(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", one_at_a_time)
    with mock_aws():
        create_table(boto3.client("dynamodb", region_name=AWS_REGION), AWS_TABLE)
        boto3.client("s3", region_name=AWS_REGION).create_bucket(Bucket=AWS_BUCKET)
        queue_url = boto3.client("sqs", region_name=AWS_REGION).create_queue(QueueName="kestrel-train")["QueueUrl"]
        boto3.client("ses", region_name=AWS_REGION).verify_email_identity(EmailAddress=AWS_MAIL_FROM)
        settings = Settings(
            runtime="aws",
            data_dir=data_dir,
            table=AWS_TABLE,
            bucket=AWS_BUCKET,
            limits=Limits(),
            training=TrainingSettings(
                queue_url=queue_url,
                image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/kestrel-training:test",
                role_arn="arn:aws:iam::123456789012:role/kestrel-training",
                instance_type="ml.m5.large",
                max_seconds=3600,
            ),
            mail=MailSettings(sender=AWS_MAIL_FROM, console_url="https://console.example.com/"),
        )
        yield build_ports(settings)


@pytest.fixture(params=["local", pytest.param("aws", marks=pytest.mark.aws)])
def api_server(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningServer]:
    """A fresh Kestrel on each runtime: ``.url``, ``.ports``, ``.runtime``, ``.token`` (owner A),
    ``.new_token(email)``, ``.request(method, path, token=..., **requests_kwargs)``."""
    if request.param == "local":
        with running_server(build_ports(local_settings(tmp_path / "data")), "local") as server:
            yield server
        return
    # moto stays active for the whole test, server threads included (it patches botocore globally).
    with aws_ports(monkeypatch, tmp_path / "data") as ports, running_server(ports, "aws") as server:
        yield server


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[RunningServer]:
    """``api_server`` on the local runtime only (SQLite + folder in ``tmp_path / "data"``)."""
    with running_server(build_ports(local_settings(tmp_path / "data")), "local") as server:
        yield server


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every attempt to open a connection is recorded and fails the test (AssertionError is not an
    OSError, so fetch cannot turn it into a FetchRefused)."""
    attempts: list[Any] = []

    def forbidden(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise AssertionError(f"a connection to {address} was attempted")

    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket.socket, "connect_ex", forbidden)
    return attempts


def use_fetch_settings(monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    """Serve this test's requests with other ``_url`` fetch settings (e.g. ``allowed_hosts``).

    Settings are read once, when the ports are built (as at a Lambda's cold start), so a test
    changes the in-process server's ports, not the environment."""
    ports = composition.get_ports()
    fetch = replace(ports.settings.fetch, **changes)
    monkeypatch.setattr(composition, "_ports", replace(ports, settings=replace(ports.settings, fetch=fetch)))
