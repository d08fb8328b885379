"""The ``kestrel`` command: token management, ``serve`` as a real process, and its error handling."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests
from moto import mock_aws

from kestrel.cli.main import ADMIN_EMAIL, main
from tests.conftest import RunningServer

KESTREL = str(Path(sys.executable).parent / "kestrel")  # the installed console script
TOKEN = re.compile(r"^[0-9a-f]{40}$")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("kestrel: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    return str(tmp_path / "data")


# --- kestrel token ---


def test_token_create_list_revoke(capsys: pytest.CaptureFixture[str], data_dir: str) -> None:
    code, out, _ = run(
        capsys, "token", "create", "--email", "ann@example.com", "--name", "laptop", "--data-dir", data_dir
    )
    assert code == 0
    token = out.splitlines()[-1]
    assert TOKEN.match(token)
    code, out, _ = run(capsys, "token", "create", "--email", "ann@example.com", "--data-dir", data_dir)
    second = out.splitlines()[-1]
    assert code == 0 and TOKEN.match(second) and second != token

    code, listing, _ = run(capsys, "token", "list", "--data-dir", data_dir)
    lines = listing.splitlines()
    assert code == 0 and lines[0].split() == ["TOKEN", "ID", "EMAIL", "NAME", "CREATED"]
    assert len(lines) == 3 and all("ann@example.com" in line for line in lines[1:])
    assert "laptop" in lines[1] and "default" in lines[2]
    assert token not in listing and second not in listing  # never the tokens themselves

    token_id = lines[1].split()[0]
    code, out, _ = run(capsys, "token", "revoke", token_id, "--data-dir", data_dir)
    assert code == 0 and token_id in out
    code, listing, _ = run(capsys, "token", "list", "--data-dir", data_dir)
    assert token_id not in listing and len(listing.splitlines()) == 2

    code, _, err = run(capsys, "token", "revoke", token_id, "--data-dir", data_dir)
    assert_one_line_error(code, err, token_id, "kestrel token list")


def test_an_empty_token_list_says_how_to_make_one(capsys: pytest.CaptureFixture[str], data_dir: str) -> None:
    code, out, _ = run(capsys, "token", "list", "--data-dir", data_dir)
    assert code == 0 and "kestrel token create" in out


def test_the_data_dir_comes_from_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KESTREL_DATA_DIR", str(tmp_path / "from-env"))
    code, _, _ = run(capsys, "token", "create", "--email", "env@example.com")
    assert code == 0 and (tmp_path / "from-env" / "kestrel.db").is_file()


def test_user_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, "token", "create", "--email", "not-an-address", "--data-dir", data_dir)
    assert_one_line_error(code, err, "not-an-address")

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run(capsys, "token", "list", "--data-dir", str(blocker / "data"))
    assert_one_line_error(code, err, str(blocker / "data"))

    code, _, err = run(capsys, "token", "keys", "--data-dir", data_dir)
    assert_one_line_error(code, err, "AWS only")  # the local gateway has no usage plan

    monkeypatch.setenv("KESTREL_RUNTIME", "aws")
    monkeypatch.delenv("KESTREL_TABLE", raising=False)
    code, _, err = run(capsys, "token", "list")
    assert_one_line_error(code, err, "KESTREL_TABLE")
    monkeypatch.setenv("KESTREL_RUNTIME", "mars")
    code, _, err = run(capsys, "token", "list")
    assert_one_line_error(code, err, "KESTREL_RUNTIME")


def test_usage_errors_exit_2_without_raising(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["token"]) == 2
    assert main(["token", "create"]) == 2  # --email is required
    assert "--email" in capsys.readouterr().err
    assert main(["--help"]) == 0


@pytest.mark.aws
def test_token_commands_work_against_the_aws_table(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kestrel.adapters.dynamo_items import create_table

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "KESTREL_RUNTIME": "aws",
        "KESTREL_TABLE": "cli-table",
        "KESTREL_BUCKET": "cli-bucket",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        create_table(boto3.client("dynamodb"), "cli-table")
        boto3.client("s3").create_bucket(Bucket="cli-bucket")
        plan = boto3.client("apigateway").create_usage_plan(name="kestrel-cli")
        monkeypatch.setenv("KESTREL_USAGE_PLAN_ID", plan["id"])
        code, out, _ = run(capsys, "token", "create", "--email", "cloud@example.com")
        assert code == 0 and TOKEN.match(out.splitlines()[-1])
        assert len(boto3.client("apigateway").get_usage_plan_keys(usagePlanId=plan["id"])["items"]) == 1
        code, listing, _ = run(capsys, "token", "list")
        assert code == 0 and "cloud@example.com" in listing


# --- as processes ---


def test_token_create_pipes_into_tail(data_dir: str) -> None:
    result = subprocess.run(
        f'"{KESTREL}" token create --email pipe@example.com --data-dir "{data_dir}" | tail -1',
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert TOKEN.match(result.stdout.strip())


class ServeProcess:
    """``kestrel serve`` in a subprocess, its output read line by line in the background."""

    def __init__(self, data_dir: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("KESTREL_RUNTIME", None)
        self.process = subprocess.Popen(
            [KESTREL, "serve", "--port", "0", "--data-dir", data_dir],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self.ended = False
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def read_until(self, marker: str, timeout: float = 60) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {marker!r} in:\n{''.join(self.output)}") from None
            if line is None:
                self.ended = True
                raise AssertionError(f"exited before {marker!r}:\n{''.join(self.output)}")
            self.output.append(line)
            if marker in line:
                return "".join(self.output)

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=30)
        self.read_until_end()
        return code

    def read_until_end(self) -> str:
        while not self.ended:
            line = self.lines.get(timeout=30)
            if line is None:
                self.ended = True
            else:
                self.output.append(line)
        return "".join(self.output)


@pytest.fixture
def serve_process() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for serving in started:
        if serving.process.poll() is None:
            serving.process.kill()
            serving.process.wait(timeout=10)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


@pytest.mark.slow  # a `kestrel serve` process that starts its worker pools
def test_serve_on_an_empty_folder_prints_a_working_token(data_dir: str, serve_process: list[ServeProcess]) -> None:
    serving = ServeProcess(data_dir)
    serve_process.append(serving)
    banner = serving.read_until("Press Ctrl+C")
    url = re.search(r"running at\s+(http://\S+/)", banner)
    token = re.search(r"^\s+([0-9a-f]{40})\s*$", banner, re.MULTILINE)
    assert url and token, banner
    assert f"{url[1]}recognition/v2/docs/" in banner and ADMIN_EMAIL in banner
    assert f'curl -H "Authorization: Token {token[1]}" {url[1]}recognition/v2/task/' in banner

    # The first request may wait for the API's first worker process to start (a cold start).
    response = requests.get(
        f"{url[1]}recognition/v2/task/", headers={"Authorization": f"Token {token[1]}"}, timeout=120
    )
    assert response.status_code == 200 and response.json()["count"] == 0
    assert serving.stop(signal.SIGTERM) == 0
    output = serving.read_until_end()
    assert "Kestrel stopped." in output and "Traceback" not in output
    assert token[1] not in output.split("Press Ctrl+C")[1]  # the request log never shows it

    # Second start on the same folder: no new owner or token, the old token still works; Ctrl+C stops it.
    again = ServeProcess(data_dir)
    serve_process.append(again)
    banner = again.read_until("Press Ctrl+C")
    assert not re.search(r"^\s+[0-9a-f]{40}\s*$", banner, re.MULTILINE)
    url = re.search(r"running at\s+(http://\S+/)", banner)
    assert url
    response = requests.get(
        f"{url[1]}recognition/v2/task/", headers={"Authorization": f"Token {token[1]}"}, timeout=120
    )
    assert response.status_code == 200
    assert again.stop(signal.SIGINT) == 0


def test_serve_reports_a_busy_port_in_one_line(data_dir: str, local_server: RunningServer) -> None:
    port = str(local_server.server.port)
    result = subprocess.run(
        [KESTREL, "serve", "--port", port, "--data-dir", data_dir], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("kestrel: error: cannot listen on")
    assert "Traceback" not in result.stderr
