"""What a user gets wrong gives ONE line on stderr and exit status 2, never a traceback: a bad
endpoint, a bad or missing token, an unknown task, files that cannot be read."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kestrel.cli.main import main
from tests.cli.conftest import KESTREL, Cli, all_images, one_line_error
from tests.conftest import RunningServer
from tests.photos import photo

SOME_TOKEN = "0123456789abcdef0123456789abcdef01234567"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KESTREL_ENDPOINT", "KESTREL_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def _closed_port() -> int:
    """A local port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("command", [["tasks"], ["train", "Pets", "--wait"], ["models", "Pets"]])
def test_connection_refused(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}/"
    code, out, err = run(capsys, *command, "--endpoint", endpoint, "--token", SOME_TOKEN)
    one_line_error(code, err, f"cannot reach the Kestrel API at {endpoint}", "refused")
    assert out == ""


def test_a_host_name_that_does_not_resolve(capsys: pytest.CaptureFixture[str], photo_tree: Path) -> None:
    code, _, err = run(
        capsys, "import", str(photo_tree), "--task", "Pets", "--endpoint", "http://kestrel.invalid/", "--token", "x"
    )
    one_line_error(code, err, "kestrel.invalid", "does not resolve")


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # stderr is what the test reads
        pass


def test_an_endpoint_that_is_not_kestrel(capsys: pytest.CaptureFixture[str]) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietFiles)  # another web server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/"
        code, _, err = run(capsys, "--endpoint", endpoint, "--token", SOME_TOKEN, "tasks")
    finally:
        server.shutdown()
        server.server_close()
    one_line_error(code, err, "HTTP 404", "is the endpoint right?")


def test_a_malformed_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "tasks", "--endpoint", "ftp://example.com/", "--token", SOME_TOKEN)
    one_line_error(code, err, "not an http(s) URL")


def test_a_bad_token_and_no_token(cli: Cli, photo_tree: Path, local_server: RunningServer) -> None:
    for token in ("f" * 40, "not-a-token"):
        code, out, err = cli("import", str(photo_tree), "--task", "Pets", token=token)
        one_line_error(code, err, "Invalid token", "KESTREL_TOKEN")
        assert out == ""
    assert local_server.request("GET", "recognition/v2/task/").json()["count"] == 0  # nothing was created
    code, _, err = cli("classify", "Pets", str(photo_tree), token="f" * 40)
    one_line_error(code, err, "Invalid token")

    code, _, err = run(cli.capsys, "tasks", "--endpoint", local_server.url)
    one_line_error(code, err, "no API token", "KESTREL_TOKEN")


def test_the_environment_supplies_endpoint_and_token(
    cli: Cli, local_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KESTREL_ENDPOINT", local_server.url + "recognition/v2")  # the API root works too
    monkeypatch.setenv("KESTREL_TOKEN", local_server.token)
    local_server.request("POST", "recognition/v2/task/", json={"name": "From env"})
    code, out, _ = run(cli.capsys, "tasks")
    assert code == 0 and "From env" in out
    code, _, err = run(cli.capsys, "--token", "f" * 40, "tasks")  # an option beats the environment
    one_line_error(code, err, "Invalid token")


@pytest.mark.parametrize(
    "command",
    [
        ["train", "Nope"],
        ["train", "Nope", "--wait"],
        ["models", "Nope"],
        ["deploy", "Nope", "1"],
        ["classify", "Nope", "PHOTO"],
        ["train", "8d6f0b8e-1f0a-4c36-9a55-9f0e8f0a1b2c"],  # an id nobody has
    ],
)
def test_an_unknown_task(cli: Cli, tmp_path: Path, command: list[str]) -> None:
    image = tmp_path / "cat.jpg"
    image.write_bytes(photo())
    code, out, err = cli(*[str(image) if arg == "PHOTO" else arg for arg in command])
    one_line_error(code, err, f"no task named {command[1]!r}", "kestrel tasks")
    assert out == ""


def test_a_task_that_cannot_be_trained_yet_or_an_unknown_id(cli: Cli, photo_tree: Path) -> None:
    code, _, err = cli("import", str(photo_tree), "--task", "8d6f0b8e-1f0a-4c36-9a55-9f0e8f0a1b2c")
    one_line_error(code, err, "no task with the id 8d6f0b8e-1f0a-4c36-9a55-9f0e8f0a1b2c")
    shutil.rmtree(photo_tree / "coffee")
    code, _, _ = cli("import", str(photo_tree), "--task", "Pets")
    assert code == 1  # the text file
    code, out, err = cli("train", "Pets", "--wait")
    one_line_error(code, err, "cannot train yet", "at least 2")
    assert out == ""


def test_files_that_cannot_be_read(cli: Cli, photo_tree: Path, tmp_path: Path, local_server: RunningServer) -> None:
    local_server.request("POST", "recognition/v2/task/", json={"name": "Pets"})
    code, _, err = cli("classify", "Pets", str(tmp_path / "missing.jpg"))
    one_line_error(code, err, "missing.jpg", "No such file or directory")

    fifo = tmp_path / "a-pipe.jpg"
    os.mkfifo(fifo)  # reading it would block forever
    code, _, err = cli("classify", "Pets", str(photo_tree / "cat" / "00.jpg"), str(fifo))
    one_line_error(code, err, "a-pipe.jpg", "not a regular file")

    code, _, err = cli("import", str(photo_tree / "cat" / "00.jpg"), "--task", "Pets")
    one_line_error(code, err, "is not a folder")
    code, _, err = cli("import", str(tmp_path / "nowhere"), "--task", "Pets")
    one_line_error(code, err, "no such folder")
    empty = tmp_path / "flat"
    empty.mkdir()
    (empty / "loose.jpg").write_bytes(photo())
    code, _, err = cli("import", str(empty), "--task", "Pets")
    one_line_error(code, err, "has no sub-folders")

    os.mkfifo(photo_tree / "coffee" / "pipe.jpg")
    code, _, err = cli("import", str(photo_tree), "--task", "Pets")
    one_line_error(code, err, "pipe.jpg", "not a regular file")
    assert all_images(local_server) == []  # refused before anything was sent

    # Classify needs a trained version: said before any file is sent.
    code, _, err = cli("classify", "Pets", str(photo_tree / "cat"))
    one_line_error(code, err, "no version in production", "kestrel train Pets --wait")
    code, _, err = cli("classify", "Pets", str(photo_tree / "cat"), "--version", "3")
    one_line_error(code, err, "has no version 3")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user can traverse (pytest's tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="kestrel-cli-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in sorted(folder.rglob("*"), reverse=True):
            path.chmod(0o700)
            path.rmdir() if path.is_dir() else path.unlink()
        folder.rmdir()


def _as_unprivileged(argv: list[str]) -> list[str]:
    """Root reads every file whatever its mode: run without the capabilities that let it
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so chmod 000 means something. Staying root keeps
    the venv reachable wherever the clone lives (e.g. under a 0700 temporary folder)."""
    if os.geteuid() != 0:
        return argv
    dropped = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={dropped}", f"--inh-caps={dropped}", *argv]


def test_a_file_without_read_permission_via_the_real_command(local_server: RunningServer, shared_dir: Path) -> None:
    for label in ("cat", "coffee"):
        (shared_dir / label).mkdir()
        (shared_dir / label / "ok.jpg").write_bytes(photo(side=64))
        (shared_dir / label).chmod(0o755)
        (shared_dir / label / "ok.jpg").chmod(0o644)
    secret = shared_dir / "cat" / "secret.jpg"
    secret.write_bytes(photo("coffee", side=64))
    secret.chmod(0o000)
    env = {
        **os.environ,
        "KESTREL_ENDPOINT": local_server.url,
        "KESTREL_TOKEN": local_server.token,
        "HOME": str(shared_dir),
    }
    for command in (["classify", "Pets", str(secret)], ["import", str(shared_dir), "--task", "Pets"]):
        result = subprocess.run(
            _as_unprivileged([KESTREL, *command]), capture_output=True, text=True, env=env, timeout=120
        )
        one_line_error(result.returncode, result.stderr, str(secret), "Permission denied")
        assert result.stdout == ""
    assert local_server.request("GET", "recognition/v2/task/").json()["count"] == 0


def test_a_bad_endpoint_via_the_real_command() -> None:
    env = {**os.environ, "KESTREL_ENDPOINT": f"127.0.0.1:{_closed_port()}", "KESTREL_TOKEN": SOME_TOKEN}
    result = subprocess.run([KESTREL, "models", "Pets"], capture_output=True, text=True, env=env, timeout=60)
    one_line_error(result.returncode, result.stderr, "cannot reach the Kestrel API at http://127.0.0.1:", "refused")
