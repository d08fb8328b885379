"""The train use case without HTTP: version n+1 WAITING and queued, or FAILED when it cannot be."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kestrel.domain.entities import TrainStatus
from kestrel.domain.errors import InvalidInput
from kestrel.ports.errors import Unavailable
from kestrel.ports.jobs import TrainRequest
from kestrel.store.tasks import get_task
from kestrel.store.versions import get_model
from kestrel.usecases.train import request_training
from tests.unit.usecases.conftest import Owned


class RefusingQueue:
    """A queue whose send fails with ``error`` (what SQS does when throttled or unreachable)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.sent: list[TrainRequest] = []

    def send(self, request: TrainRequest) -> None:
        self.sent.append(request)
        raise self.error


def test_a_request_records_version_1_waiting_and_queues_it(owned: Owned) -> None:
    model = request_training(owned.ports, owned.space, owned.task.id)
    assert (model.version, model.train_status) == (1, TrainStatus.WAITING)
    received = owned.ports.queue.receive()  # type: ignore[attr-defined]
    assert received is not None and received.request == TrainRequest(
        owned.owner_id, owned.task.id, model.id, 1, owned.space.workspace_id
    )
    assert get_task(owned.ports.items, owned.space, owned.task.id).last_train_status == TrainStatus.WAITING


def test_a_queue_that_stays_busy_leaves_the_version_failed_and_says_when_to_retry(owned: Owned) -> None:
    queue = RefusingQueue(Unavailable("the train queue", "throttled", 7))
    with pytest.raises(Unavailable) as busy:
        request_training(replace(owned.ports, queue=queue), owned.space, owned.task.id)
    assert busy.value.retry_after == 7 and "version 1 is marked FAILED" in busy.value.detail
    [sent] = queue.sent
    model = get_model(owned.ports.items, owned.space, sent.model_id)
    assert model.train_status == TrainStatus.FAILED and model.failure_reason == "the train request could not be queued"
    assert get_task(owned.ports.items, owned.space, owned.task.id).last_train_status == TrainStatus.FAILED
    # Asking again makes version 2: nothing stays WAITING for a request that was never queued.
    assert request_training(owned.ports, owned.space, owned.task.id).version == 2


def test_an_unexpected_queue_error_also_fails_the_version_and_is_raised(owned: Owned) -> None:
    queue = RefusingQueue(RuntimeError("socket closed"))
    with pytest.raises(RuntimeError):
        request_training(replace(owned.ports, queue=queue), owned.space, owned.task.id)
    assert get_model(owned.ports.items, owned.space, queue.sent[0].model_id).train_status == TrainStatus.FAILED


def test_the_rules_refuse_before_anything_is_recorded(owned: Owned) -> None:
    from kestrel.store import labels, tasks

    extra = labels.create_label(owned.ports.items, owned.space, "sea", owned.labels[0].type, "", "")
    tasks.attach_label(owned.ports.items, owned.space, owned.task.id, extra.id)
    with pytest.raises(InvalidInput, match="sea"):
        request_training(owned.ports, owned.space, owned.task.id)
    assert owned.ports.queue.receive() is None  # type: ignore[attr-defined]
    assert get_task(owned.ports.items, owned.space, owned.task.id).versions_created == 0
