"""What a restarted worker does with what a killed server left, set up exactly rather than by luck:
a version recorded whose train request was never queued (the server died between the two)."""

from __future__ import annotations

from kestrel.adapters.sqlite_jobs import SqliteTrainQueue
from kestrel.local.worker import LocalWorker
from kestrel.store.accounts import ensure_owner
from kestrel.store.keys import Space
from kestrel.store.lifecycle import create_version
from tests.api.http import Api
from tests.conftest import OWNER_A, RunningServer
from tests.flow.conftest import make_trainable_task


def test_a_version_whose_request_was_never_queued_is_launched_after_a_restart(local_server: RunningServer) -> None:
    api = Api(local_server.url, local_server.token)
    task_id = make_trainable_task(api).task["id"]
    ports = local_server.ports
    owner_id = ensure_owner(ports.items, OWNER_A).id
    # Recorded; the kill came before the queue.
    orphan = create_version(ports.items, Space.default_of(owner_id), task_id)
    assert isinstance(ports.queue, SqliteTrainQueue) and ports.queue.receive(lease=0) is None
    worker = LocalWorker(ports)

    assert worker.requeue_waiting() == 1
    assert worker.step()  # launches it: the job is recorded, the version Training
    assert api.get(f"model/{orphan.id}")["train_status"] == "IN_TRAINING"
    assert api.get(f"task/{task_id}")["last_train_status"] == "IN_TRAINING"
    assert worker.requeue_waiting() == 0  # a version past Waiting has its job; nothing to queue
