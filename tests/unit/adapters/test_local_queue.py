"""The local train queue behaves like SQS: leases hide a message, redelivery after the lease,
and a message received too often without being deleted goes to the dead letters."""

from __future__ import annotations

from pathlib import Path

from kestrel.adapters.sqlite_jobs import SqliteTrainQueue
from kestrel.ports.jobs import TrainRequest

REQUEST = TrainRequest(owner_id="o", task_id="t", model_id="m", version=1)


def test_lease_hides_then_redelivers(tmp_path: Path) -> None:
    queue = SqliteTrainQueue(tmp_path / "q.db")
    queue.send(REQUEST)
    first = queue.receive(lease=600)
    assert first is not None and first.request == REQUEST and first.receive_count == 1
    assert queue.receive(lease=600) is None  # hidden while leased
    queue.delete(first.receipt)
    assert queue.receive(lease=0) is None


def test_too_many_receives_go_to_the_dead_letters(tmp_path: Path) -> None:
    queue = SqliteTrainQueue(tmp_path / "q.db", max_receives=3)
    queue.send(REQUEST)
    counts = []
    for _ in range(3):
        received = queue.receive(lease=0)  # never deleted: the handler keeps failing
        assert received is not None
        counts.append(received.receive_count)
    assert counts == [1, 2, 3]
    assert queue.receive(lease=0) is None
    assert queue.dead_letters() == [{"request": REQUEST.to_message(), "receive_count": 3}]
