"""Versions and tasks stored before Kestrel took Ximilar's state names ("Waiting", "Training",
"Trained", "Failed") keep working: read as the same states, moved on by the lifecycle, deployable
and classifiable; on SQLite and on DynamoDB (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kestrel.composition import Ports, build_ports
from kestrel.domain.entities import TrainStatus
from kestrel.ports.items import Update
from kestrel.store import keys, lifecycle
from kestrel.store.keys import Space
from kestrel.store.tasks import get_task, set_production_version
from kestrel.store.versions import get_model, waiting_models
from tests.conftest import aws_ports, local_settings
from tests.unit.usecases.conftest import Owned, trainable


@pytest.fixture(params=["sqlite", pytest.param("dynamodb", marks=pytest.mark.aws)])
def owned(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Owned]:
    if request.param == "sqlite":
        yield trainable(build_ports(local_settings(tmp_path / "data")))
        return
    with aws_ports(monkeypatch, tmp_path / "data") as ports:
        yield trainable(ports)


def _store_legacy(ports: Ports, owner: Space, task_id: str, model_id: str, status: str) -> None:
    """Rewrite the items as an older Kestrel left them."""
    ports.items.update(Update(keys.model_key(owner, model_id), set={"train_status": status}))
    ports.items.update(Update(keys.task_key(owner, task_id), set={"last_train_status": status}))


def test_a_legacy_waiting_version_is_found_trained_and_deployed(owned: Owned) -> None:
    items, owner, task_id = owned.ports.items, owned.space, owned.task.id
    model = lifecycle.create_version(items, owner, task_id)
    _store_legacy(owned.ports, owner, task_id, model.id, "Waiting")

    assert get_model(items, owner, model.id).train_status == TrainStatus.WAITING
    assert get_task(items, owner, task_id).last_train_status == TrainStatus.WAITING
    assert [m.id for m in waiting_models(items)] == [model.id]  # the worker re-queues it

    ref = lifecycle.JobRef(owner, task_id, model.id)
    assert lifecycle.mark_training(items, ref, images=40)
    assert lifecycle.mark_trained(items, ref, 0.9, {"accuracy": 0.9})
    stored = items.get(keys.model_key(owner, model.id))
    assert stored is not None and stored["train_status"] == "TRAINED"  # rewritten in the new spelling
    task = get_task(items, owner, task_id)
    assert (task.production_version, task.last_train_status) == (1, TrainStatus.TRAINED)


def test_a_legacy_trained_version_can_be_deployed_and_a_failed_one_deleted(owned: Owned) -> None:
    items, owner, task_id = owned.ports.items, owned.space, owned.task.id
    first = lifecycle.create_version(items, owner, task_id)
    lifecycle.mark_trained(items, lifecycle.JobRef(owner, task_id, first.id), 0.8, {})
    second = lifecycle.create_version(items, owner, task_id)
    _store_legacy(owned.ports, owner, task_id, first.id, "Trained")
    _store_legacy(owned.ports, owner, task_id, second.id, "Failed")

    assert set_production_version(items, owner, task_id, 1).production_version == 1
    assert get_model(items, owner, second.id).train_status == TrainStatus.FAILED
    assert lifecycle.delete_model(items, owner, second.id).version == 2
    assert items.get(keys.model_key(owner, second.id)) is None
    with pytest.raises(ValueError, match="unknown training state"):
        TrainStatus.parse("Finished")
