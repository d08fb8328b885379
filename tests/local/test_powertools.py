"""Powertools is configured for the local runtime explicitly (``quiet_local_powertools``, called by
`kestrel serve`, its worker processes and the test suite): no EMF metric line reaches stdout, where
the CLI prints its own output, whichever request comes first in the process."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from kestrel.composition import build_ports
from kestrel.local.powertools import quiet_local_powertools
from tests.conftest import local_settings, running_server


def _first_request_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    cold_start.is_cold_start = True  # as in a fresh process
    with running_server(build_ports(local_settings(tmp_path / "data")), "local") as server:
        capsys.readouterr()
        assert server.request("GET", "recognition/v2/task/").status_code == 200
        return capsys.readouterr().out


def test_the_local_runtime_prints_no_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        cold_start.is_cold_start = True
        quiet_local_powertools()
        assert cold_start.is_cold_start is False
        with running_server(build_ports(local_settings(tmp_path / "data")), "local") as server:
            capsys.readouterr()
            assert server.request("GET", "recognition/v2/task/").status_code == 200
            assert '"_aws"' not in capsys.readouterr().out
    finally:
        quiet_local_powertools()


def test_without_it_the_first_request_prints_an_emf_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control: what the CLI tests saw when another test had not happened to set things first.
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    try:
        assert '"_aws"' in _first_request_output(tmp_path, capsys)
    finally:
        quiet_local_powertools()
