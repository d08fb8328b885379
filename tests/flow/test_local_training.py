"""The whole local flow over HTTP with real training: train -> worker -> Trained -> classify -> emails."""

from __future__ import annotations

import base64
import email
import json
from pathlib import Path
from typing import Any

import pytest

from kestrel.local.worker import LocalWorker
from tests.api.http import Api
from tests.flow.conftest import make_trainable_task
from tests.photos import photo

pytestmark = pytest.mark.slow


def _outbox(server: Any) -> list[email.message.Message]:
    folder = Path(server.ports.settings.data_dir) / "outbox"
    return [email.message_from_bytes(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]


def test_train_classify_and_retrain(local_server: Any) -> None:
    api = Api(local_server.url, local_server.token)
    trainable = make_trainable_task(api)
    task_id = trainable.task["id"]
    cat, coffee = trainable.labels
    worker = LocalWorker(local_server.ports, poll_seconds=0.1)

    first = api.post(f"task/{task_id}/train/", status=201)
    worker.run_until_idle()
    model = api.get(f"model/{first['id']}")
    assert model["train_status"] == "TRAINED", model
    assert model["accuracy"] >= 0.75 and model["trained"] and model["started"]
    metrics = model["metrics"]
    assert metrics["counts"]["images_train"] + metrics["counts"]["images_test"] == 40
    assert set(metrics["per_label"]) == {cat["id"], coffee["id"]}
    assert metrics["confusion_matrix"]["labels"] == [cat["id"], coffee["id"]]
    assert metrics["embedded_images"] == 40
    task = api.get(f"task/{task_id}")
    assert (task["production_version"], task["last_train_status"]) == (1, "TRAINED")

    # Emails on start and finish, with the task name, the version and the accuracy.
    mails = _outbox(local_server)
    assert [m["Subject"].split(":")[1].strip().split(" ")[0] for m in mails] == ["training", "'Cats"]
    started, finished = mails
    assert "Cats and coffee" in started["Subject"] and "version 1" in started["Subject"]
    body = finished.get_payload(decode=True).decode()
    assert "accuracy" in finished["Subject"] and f"{100 * model['accuracy']:.1f}%" in body

    # Classify a new photo of each kind (not among the training crops).
    records = [
        {"_base64": base64.b64encode(photo("chelsea", 300)).decode(), "_id": "cat"},
        {"_base64": base64.b64encode(photo("coffee", 300)).decode(), "_id": "coffee"},
        {"_base64": base64.b64encode(b"not an image").decode(), "_id": "bad"},
    ]
    answer = api.post("classify/", {"task_id": task_id, "records": records, "descriptor": 1})
    assert answer["version"] == 1 and answer["status"]["code"] == 200
    by_id = {record["_id"]: record for record in answer["records"]}
    assert by_id["cat"]["best_label"]["name"] == "cat" and by_id["coffee"]["best_label"]["name"] == "coffee"
    assert by_id["cat"]["_width"] == 300 and len(by_id["cat"]["_descriptor"]) == 1280
    assert abs(sum(label["prob"] for label in by_id["cat"]["labels"]) - 1.0) < 1e-3
    assert by_id["bad"]["_status"]["code"] == 400 and "best_label" not in by_id["bad"]
    assert "_base64" not in by_id["cat"]

    # A retraining embeds only the images it has not seen.
    for data in [photo("chelsea", 90), photo("chelsea", 110)]:
        api.upload(data, labels=[cat["id"]])
    second = api.post(f"task/{task_id}/train/", status=201)
    worker.run_until_idle()
    retrained = api.get(f"model/{second['id']}")
    assert retrained["train_status"] == "TRAINED" and retrained["version"] == 2, retrained["failure_reason"]
    assert retrained["metrics"]["embedded_images"] == 2 and retrained["metrics"]["cached_images"] == 40
    # The card says where the time went and how much memory the job needed (the job is its own process).
    assert set(retrained["metrics"]["phase_seconds"]) == {
        "embedding",
        "head",
        "evaluation",
        "refit",
        "mislabelled",
        "export",
    }
    assert 50 < retrained["metrics"]["peak_memory_mb"] < 8192
    # auto_deploy is off and version 1 is deployed: it stays in production until deployed by hand.
    assert api.get(f"task/{task_id}")["production_version"] == 1
    assert api.post("classify/", {"task_id": task_id, "version": 2, "records": records[:1]})["version"] == 2
    api.ok("PATCH", f"task/{task_id}/", json={"production_version": 2})
    assert api.get(f"task/{task_id}")["production_version"] == 2
    refused = api.call("DELETE", f"model/{second['id']}/")
    assert refused.status_code == 409
    api.ok("DELETE", f"model/{first['id']}/", 204)
    assert [m["version"] for m in api.get("model/", params={"task": task_id})["results"]] == [2]

    # The card in the blob store is the one the model was trained with.
    card = json.loads(
        local_server.ports.blobs.get(f"models/{model_owner_prefix(local_server)}/{second['id']}/card.json")
    )
    assert card["version"] == 2 and [label["name"] for label in card["labels"]] == ["cat", "coffee"]


def model_owner_prefix(server: Any) -> str:
    from kestrel.store.accounts import authenticate

    return authenticate(server.ports.items, f"Token {server.token}")


def test_a_mailer_that_always_raises_never_blocks_the_worker(
    local_server: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue-14 case: writing the mail fails every time. The version is still Trained, the
    worker moves on (the job is not claimed again), each mail is tried a bounded number of times,
    then dropped with a log line and a metric, and the version says so."""
    from types import SimpleNamespace

    from kestrel.config import MailSettings
    from kestrel.flow import mails
    from kestrel.ports.mail import Mail

    api = Api(local_server.url, local_server.token)
    trainable = make_trainable_task(api)
    tried: list[str] = []

    def always_raises(mail: Mail) -> None:
        tried.append(mail.subject)
        raise ValueError("Header values may not contain linefeed or carriage return characters")

    pauses: list[float] = []
    monkeypatch.setattr(local_server.ports.mailer, "send", always_raises)
    monkeypatch.setattr(mails, "time", SimpleNamespace(sleep=pauses.append))
    # The metric as counted (locally metrics are off, so nothing is published).
    emitted: list[str] = []
    count = mails.count

    def counted(metrics: Any, name: str) -> None:
        emitted.append(name)
        count(metrics, name)

    monkeypatch.setattr(mails, "count", counted)
    worker = LocalWorker(local_server.ports, poll_seconds=0.1)

    model = api.post(f"task/{trainable.task['id']}/train/", status=201)
    worker.run_until_idle()

    assert worker.step() is False  # nothing left: the job was recorded, not claimed again
    trained = api.get(f"model/{model['id']}")
    assert trained["train_status"] == "TRAINED"
    assert api.get(f"task/{trainable.task['id']}")["production_version"] == 1
    attempts = MailSettings().attempts
    assert len(tried) == 2 * attempts  # "started" and "finished", each tried `attempts` times
    assert len(pauses) == 2 * (attempts - 1)
    expected = (
        f"not sent: the mail could not be written or sent ({attempts} attempts); the training result is unaffected"
    )
    assert trained["mail_status"] == {"started": expected, "finished": expected}
    assert emitted == [mails.METRIC_NOT_SENT] * 2  # the metric, once per dropped mail
    dropped = [record for record in caplog.records if record.getMessage() == "mail dropped after its attempts"]
    assert len(dropped) == 2 and {record.levelname for record in dropped} == {"ERROR"}  # the log line
    assert not list((Path(local_server.ports.settings.data_dir) / "outbox").glob("*.eml"))
