"""The finisher's guarantees on both runtimes: a completion event is applied once (repeated or
concurrent deliveries change nothing more), unknown jobs are ignored, a bad artefact fails the
version with a reason, and the production version only moves forward, and only when it should.

Each version is requested over HTTP and launched by the launch step (the launcher Lambda's and
the local worker's); its real model.tar.gz (``tests.flow.artefacts``) is put where SageMaker puts
it, and the finisher Lambda handler gets the EventBridge event (the local worker hands the same
event to the same step). Mails are read from moto's SES (aws) or the outbox folder (local)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

import kestrel.flow.finish as finish_step
from kestrel.flow.launch import launch
from kestrel.handlers import finisher
from kestrel.local.lambda_context import LocalLambdaContext
from kestrel.local.worker import job_event
from kestrel.ports.jobs import TrainRequest
from kestrel.store.lifecycle import job_name
from kestrel.store.version_files import model_prefix
from tests.api.http import Api
from tests.conftest import OWNER_A, RunningServer
from tests.flow.artefacts import (
    CARD_FILE,
    DESCRIPTORS_FILE,
    HEAD_FILE,
    MODEL_FILE,
    SentMail,
    TrainedArtefact,
    artefact_key,
    completed_event,
    failed_event,
    finish_mails,
    owner_id,
    pack,
    trained_once,
)
from tests.flow.conftest import TrainableTask, make_trainable_task
from tests.photos import photo

# Trains a real model once per process (the artefact fixture): make test runs it, make test-fast does not.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def artefact(tmp_path_factory: pytest.TempPathFactory) -> TrainedArtefact:
    return trained_once(tmp_path_factory)


@dataclass
class Flow:
    """One trainable task on a running server, and the steps of its versions' training."""

    server: RunningServer
    trainable: TrainableTask
    artefact: TrainedArtefact

    @property
    def api(self) -> Api:
        return self.trainable.api

    @property
    def task_id(self) -> str:
        return str(self.trainable.task["id"])

    def task(self) -> dict[str, Any]:
        return self.api.get(f"task/{self.task_id}")

    def model(self, model: dict[str, Any]) -> dict[str, Any]:
        return self.api.get(f"model/{model['id']}")

    def patch_task(self, **changes: Any) -> dict[str, Any]:
        return self.api.ok("PATCH", f"task/{self.task_id}/", json=changes)

    def start(self) -> dict[str, Any]:
        """Request the next version over HTTP and launch it (manifest, job, Training, mail)."""
        model = self.api.post(f"task/{self.task_id}/train/", status=201)
        request = TrainRequest(owner_id(self.server), self.task_id, model["id"], model["version"])
        launch(self.server.ports, request)
        assert self.model(model)["train_status"] == "IN_TRAINING"
        return model

    def put_archive(self, model: dict[str, Any], archive: bytes | None = None) -> None:
        """The job's model.tar.gz where SageMaker leaves it (the real one unless ``archive`` is given)."""
        data = archive if archive is not None else self.artefact.archive_for(model, self.trainable.labels)
        self.server.ports.blobs.put(artefact_key(model["id"]), data, "application/gzip")

    def complete(self, model: dict[str, Any], archive: bytes | None = None) -> None:
        self.put_archive(model, archive)
        deliver(completed_event(self.server, model["id"]))

    def redeliver_completion(self, model: dict[str, Any]) -> None:
        deliver(completed_event(self.server, model["id"]))

    def fail(self, model: dict[str, Any], reason: str, status: str = "Failed") -> None:
        deliver(failed_event(model["id"], reason, status))

    def model_files(self, model: dict[str, Any]) -> list[str]:
        return sorted(self.server.ports.blobs.list_keys(model_prefix(owner_id(self.server), model["id"])))

    def mails(self) -> list[SentMail]:
        return finish_mails(self.server)


def deliver(event: dict[str, Any]) -> None:
    """The finisher Lambda, invoked by EventBridge with ``event``."""
    context = LocalLambdaContext(
        function_name="kestrel-finisher",
        memory_limit_in_mb=1024,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:kestrel-finisher",
        aws_request_id=str(uuid.uuid4()),
    )
    finisher.lambda_handler(event, context)


@pytest.fixture
def flow(api_server: RunningServer, artefact: TrainedArtefact) -> Flow:
    return Flow(api_server, make_trainable_task(Api(api_server.url, api_server.token)), artefact)


def test_a_repeated_completion_event_changes_nothing(flow: Flow) -> None:
    first = flow.start()
    flow.complete(first)
    flow.patch_task(auto_deploy=True)
    second = flow.start()
    flow.complete(second)
    trained = flow.model(second)
    assert trained["train_status"] == "TRAINED" and trained["trained"]
    assert flow.task()["production_version"] == 2
    assert len(flow.mails()) == 2

    # The owner goes back to version 1 by hand; then EventBridge delivers both events again.
    assert flow.patch_task(production_version=1)["production_version"] == 1
    task = flow.task()
    flow.redeliver_completion(second)
    flow.redeliver_completion(first)

    assert flow.model(second) == trained  # same state, same trained timestamp, same metrics
    assert flow.task() == task  # not deployed a second time, status unchanged
    assert len(flow.mails()) == 2


def test_an_event_for_an_unknown_job_is_ignored(flow: Flow) -> None:
    model = flow.start()
    stranger = str(uuid.uuid4())
    flow.put_archive({**model, "id": stranger})  # even with a real archive at its output path
    deliver(completed_event(flow.server, stranger))
    deliver(failed_event(stranger, "AlgorithmError: not ours"))
    other = job_event("someone-elses-job", "Completed", artefact_uri="s3://elsewhere/model.tar.gz")
    deliver(other)
    deliver(job_event(job_name(model["id"]), "InProgress"))  # not a final state

    assert flow.model(model)["train_status"] == "IN_TRAINING"
    task = flow.task()
    assert (task["production_version"], task["last_train_status"]) == (-1, "IN_TRAINING")
    assert flow.mails() == []
    assert list(flow.server.ports.blobs.list_keys("models/")) == []


def test_an_archive_without_a_card_fails_the_version(flow: Flow) -> None:
    model = flow.start()
    flow.complete(model, pack({MODEL_FILE: flow.artefact.model}))

    failed = flow.model(model)
    assert failed["train_status"] == "FAILED" and failed["accuracy"] is None
    # The owner reads what to do; what was wrong with the archive goes to the log.
    assert failed["failure_reason"] == "the training job's output could not be read; train again"
    task = flow.task()
    assert (task["production_version"], task["last_train_status"]) == (-1, "FAILED")
    assert flow.model_files(model) == []
    [mail] = flow.mails()
    assert mail.to == OWNER_A and "failed" in mail.subject and "version 1" in mail.subject
    assert failed["failure_reason"] in mail.body


def test_descriptors_are_kept_beside_the_model_and_an_archive_without_them_still_trains(flow: Flow) -> None:
    with_descriptors = flow.start()
    card = json.dumps(flow.artefact.card_for(with_descriptors, flow.trainable.labels)).encode()
    files = {MODEL_FILE: flow.artefact.model, CARD_FILE: card, DESCRIPTORS_FILE: flow.artefact.descriptors}
    flow.complete(with_descriptors, pack(files))
    prefix = model_prefix(owner_id(flow.server), with_descriptors["id"])
    assert flow.model_files(with_descriptors) == [prefix + CARD_FILE, prefix + DESCRIPTORS_FILE, prefix + MODEL_FILE]
    assert flow.server.ports.blobs.get(prefix + DESCRIPTORS_FILE) == flow.artefact.descriptors
    search = {"records": [{"training_image_id": "any"}]}
    assert flow.api.post(f"task/{flow.task_id}/similar/", search)["indexed_images"] == 40

    # A job of an older release wrote no descriptors: the version trains; the search says why not.
    older = flow.start()
    flow.complete(older)
    assert flow.model(older)["train_status"] == "TRAINED"
    assert DESCRIPTORS_FILE not in " ".join(flow.model_files(older))
    refused = flow.api.post(f"task/{flow.task_id}/similar/", {**search, "version": 2}, status=400)
    assert refused["detail"].startswith(
        "version 2 has no image descriptors (it was trained before similarity search existed"
    )
    assert refused["detail"].endswith("train the task again")


def test_auto_deploy_on_makes_a_later_version_production(flow: Flow) -> None:
    first = flow.start()
    flow.complete(first)
    assert flow.task()["production_version"] == 1  # the task had none
    assert flow.patch_task(auto_deploy=True)["auto_deploy"] is True
    second = flow.start()
    flow.complete(second)

    task = flow.task()
    assert (task["production_version"], task["last_train_status"]) == (2, "TRAINED")
    prefix = model_prefix(owner_id(flow.server), second["id"])
    assert flow.model_files(second) == [prefix + CARD_FILE, prefix + HEAD_FILE, prefix + MODEL_FILE]
    mail = flow.mails()[-1]
    assert "version 2" in mail.subject and "now the task's production version" in mail.body


def test_an_archive_of_a_job_before_head_files_still_classifies(flow: Flow) -> None:
    """A job of an earlier release wrote no head.npz: the version is trained all the same, and
    classify reads its head out of model.onnx, answering as the version with a head file does."""
    old = flow.start()
    flow.complete(old, flow.artefact.archive_for(old, flow.trainable.labels, with_head=False))
    assert flow.model(old)["train_status"] == "TRAINED"
    prefix = model_prefix(owner_id(flow.server), old["id"])
    assert flow.model_files(old) == [prefix + CARD_FILE, prefix + MODEL_FILE]
    new = flow.start()
    flow.complete(new)
    picture = base64.b64encode(photo("chelsea", 120)).decode()
    answers = [
        flow.api.post("classify/", {"task_id": flow.task_id, "version": version, "records": [{"_base64": picture}]})
        for version in (old["version"], new["version"])
    ]
    [old_labels, new_labels] = [answer["records"][0]["labels"] for answer in answers]
    assert [label["id"] for label in old_labels] == [label["id"] for label in new_labels]
    assert [label["prob"] for label in old_labels] == pytest.approx([label["prob"] for label in new_labels], abs=1e-5)
    assert old_labels[0]["name"] == "cat"


def test_auto_deploy_off_keeps_the_production_version(flow: Flow) -> None:
    first = flow.start()
    flow.complete(first)
    assert flow.task()["auto_deploy"] is False
    second = flow.start()
    flow.complete(second)

    assert flow.model(second)["train_status"] == "TRAINED"
    task = flow.task()
    assert (task["production_version"], task["last_train_status"]) == (1, "TRAINED")
    mail = flow.mails()[-1]
    assert "version 2" in mail.subject and "Deploy it from the console" in mail.body


def test_a_failed_job_leaves_production_alone_and_says_why(flow: Flow) -> None:
    first = flow.start()
    flow.complete(first)
    flow.patch_task(auto_deploy=True)  # even a task that deploys every success keeps version 1
    second = flow.start()
    flow.fail(second, "AlgorithmError: out of memory")

    failed = flow.model(second)
    # The service's sentence, without its class name (issue 14: no exception names for people).
    assert (failed["train_status"], failed["failure_reason"]) == ("FAILED", "out of memory")
    task = flow.task()
    assert (task["production_version"], task["last_train_status"]) == (1, "FAILED")
    assert flow.model_files(second) == []
    mail = flow.mails()[-1]
    assert "failed" in mail.subject and "version 2" in mail.subject and "'Cats and coffee'" in mail.subject
    assert "out of memory" in mail.body and "AlgorithmError" not in mail.body
    assert "production version is unchanged" in mail.body

    third = flow.start()
    flow.fail(third, "", status="Stopped")  # stopped by hand: SageMaker gives no reason
    assert flow.model(third)["failure_reason"] == "the training job was stopped"
    assert flow.task()["production_version"] == 1
    assert len(flow.mails()) == 3


def test_versions_finishing_in_reverse_order_never_downgrade(flow: Flow) -> None:
    flow.patch_task(auto_deploy=True)
    first, second = flow.start(), flow.start()
    assert (first["version"], second["version"]) == (1, 2)

    flow.complete(second)
    assert flow.task()["production_version"] == 2
    flow.complete(first)

    assert flow.model(first)["train_status"] == flow.model(second)["train_status"] == "TRAINED"
    assert flow.task()["production_version"] == 2
    second_mail, first_mail = flow.mails()
    assert "version 2" in second_mail.subject and "now the task's production version" in second_mail.body
    assert "version 1" in first_mail.subject and "Deploy it from the console" in first_mail.body


def test_concurrent_deliveries_make_one_transition_and_one_mail(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    model = flow.start()
    flow.put_archive(model)
    event = completed_event(flow.server, model["id"])
    outcomes: list[bool] = []
    mark_trained = finish_step.mark_trained

    def counted(*args: Any, **kwargs: Any) -> bool:
        changed = mark_trained(*args, **kwargs)
        outcomes.append(changed)
        return changed

    monkeypatch.setattr(finish_step, "mark_trained", counted)
    start = threading.Barrier(4)

    def one_delivery(_: int) -> None:
        start.wait(timeout=30)
        finish_step.finish(flow.server.ports, event)  # what each concurrent finisher invocation runs

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one_delivery, range(4)))

    assert sorted(outcomes) == [False, False, False, True]
    assert flow.model(model)["train_status"] == "TRAINED"
    assert flow.task()["production_version"] == 1
    [mail] = flow.mails()
    assert "version 1" in mail.subject


@pytest.mark.parametrize("defect", ["card is not JSON", "card has no accuracy", "no archive at the URI"])
def test_an_unreadable_artefact_fails_the_version(flow: Flow, defect: str) -> None:
    model = flow.start()
    if defect == "card is not JSON":
        flow.put_archive(model, pack({MODEL_FILE: flow.artefact.model, CARD_FILE: b"{not json"}))
    elif defect == "card has no accuracy":
        card = flow.artefact.card_for(model, flow.trainable.labels)
        del card["accuracy"]
        flow.put_archive(model, pack({MODEL_FILE: flow.artefact.model, CARD_FILE: json.dumps(card).encode()}))

    flow.redeliver_completion(model)  # the Completed event, with the artefact (if any) in place

    state = flow.model(model)
    assert state["train_status"] == "FAILED" and state["failure_reason"]
    assert flow.task()["production_version"] == -1
    assert len(flow.mails()) == 1
