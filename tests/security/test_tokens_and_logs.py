"""Tokens are stored only as hashes and compared in constant time; no secret reaches the logs;
a revoked token stops working at once."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kestrel.local.worker import LocalWorker
from kestrel.store.accounts import create_token, ensure_owner, revoke_token
from tests.api.http import Api
from tests.conftest import RunningServer, build_ports, local_settings, running_server
from tests.flow.conftest import make_trainable_task
from tests.photos import photo


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[RunningServer, Path]]:
    data_dir = tmp_path / "data"
    with running_server(build_ports(local_settings(data_dir)), "local") as server:
        yield server, data_dir


def _all_bytes(data_dir: Path) -> list[tuple[Path, bytes]]:
    return [(path, path.read_bytes()) for path in sorted(data_dir.rglob("*")) if path.is_file()]


def test_tokens_are_stored_only_hashed(served: tuple[RunningServer, Path]) -> None:
    server, data_dir = served
    api = Api(server.url, server.token)
    api.create_task("a task")  # the store has been written through the API too
    other = server.new_token("carol@example.com", "second")
    files = _all_bytes(data_dir)
    assert any(path.name.startswith("kestrel") or path.suffix in (".db", ".sqlite") for path, _ in files), files
    for token in (server.token, other):
        needles = (token.encode(), token.upper().encode(), token.encode("utf-16-le"))
        for path, content in files:
            assert not any(needle in content for needle in needles), f"token found in {path}"
        # Positive control: the scan does see the store, which holds the token's SHA-256.
        digest = hashlib.sha256(token.encode()).hexdigest().encode()
        assert any(digest in content for _, content in files), "the scan did not read the item store"


def test_authentication_compares_in_constant_time(
    served: tuple[RunningServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = served
    calls: list[tuple[Any, Any]] = []
    original = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    assert server.request("GET", "recognition/v2/task/").status_code == 200
    digest = hashlib.sha256(server.token.encode()).hexdigest()
    assert (digest, digest) in calls, calls
    # The signed blob URLs are verified the same way.
    image = Api(server.url, server.token).upload(photo("chelsea", 64))
    before = len(calls)
    assert server.request("GET", image["img_path"], token=None).status_code == 200
    assert len(calls) > before


def test_a_revoked_token_stops_working_at_once(served: tuple[RunningServer, Path]) -> None:
    server, _ = served
    owner = ensure_owner(server.ports.items, "dave@example.com")
    token, info = create_token(server.ports.items, owner, "to revoke")
    assert server.request("GET", "recognition/v2/task/", token=token).status_code == 200
    revoke_token(server.ports.items, info.token_id)
    refused = server.request("GET", "recognition/v2/task/", token=token)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert server.request("GET", "recognition/v2/task/").status_code == 200  # other tokens unaffected


@pytest.mark.slow
def test_no_secret_in_logs(
    served: tuple[RunningServer, Path], capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    server, data_dir = served
    caplog.set_level(logging.DEBUG)
    second = server.new_token("erin@example.com", "logs")
    api = Api(server.url, server.token)
    trainable = make_trainable_task(api)
    api.post(f"task/{trainable.task['id']}/train/", status=201)
    LocalWorker(server.ports).run_until_idle()
    answer = api.post(
        "classify/",
        {"task_id": trainable.task["id"], "records": [{"_base64": "bm90IGFuIGltYWdl"}, {"_url": "http://127.0.0.1/x"}]},
    )
    assert answer["records"][0]["_status"]["code"] >= 400
    # Failures are logged too: a bad token, a near miss of a real one, a server-side refusal.
    near_miss = server.token[:-1] + ("0" if server.token[-1] != "0" else "1")
    for token in (near_miss, "not-a-token", second):
        server.request("GET", "recognition/v2/task/", token=token)
    server.request("GET", "recognition/v2/task/", headers={"Authorization": f"Bearer {server.token}"}, token=None)
    secret_key = (data_dir / "secret.key").read_text().strip()
    assert len(secret_key) >= 32
    out, err = capfd.readouterr()
    logged = out + err + caplog.text + "\n".join(str(record.__dict__) for record in caplog.records)
    assert "kestrel" in logged.lower(), "nothing was captured: the check would prove nothing"
    for secret in (server.token, second, near_miss, secret_key):
        assert secret not in logged, "a secret reached the logs"
    for path in data_dir.rglob("*.log"):
        text = path.read_text(errors="replace")
        assert server.token not in text and secret_key not in text, path


def test_a_damaged_signing_key_is_replaced_not_used(tmp_path: Path) -> None:
    # A first start killed between creating secret.key and writing it leaves an empty file; an
    # empty HMAC key would let anyone sign image URLs.
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "secret.key").write_text("")
    ports = build_ports(local_settings(data_dir))
    key = (data_dir / "secret.key").read_text().strip()
    assert len(bytes.fromhex(key)) == 32
    assert (data_dir / "secret.key").stat().st_mode & 0o777 == 0o600
    assert not list(data_dir.glob(".secret.key.*")), "the temporary file was left behind"
    # A second start uses the same key: URLs signed before a restart stay valid.
    build_ports(local_settings(data_dir))
    assert (data_dir / "secret.key").read_text().strip() == key
    assert ports.settings.data_dir == data_dir
