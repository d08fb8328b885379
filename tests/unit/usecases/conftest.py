"""Use-case fixtures: real ports (SQLite + a folder), filled through the store, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from kestrel.composition import Ports, build_ports
from kestrel.domain.entities import Label, LabelType, Task, TaskType
from kestrel.store import labels, tasks
from kestrel.store.accounts import ensure_owner
from kestrel.store.keys import Space
from kestrel.usecases.uploads import UploadLimits, upload_image
from tests.conftest import local_settings
from tests.photos import distinct_photos


@dataclass
class Owned:
    ports: Ports
    owner_id: str
    space: Space  # the owner's default workspace
    task: Task
    labels: list[Label]


def trainable(ports: Ports, per_label: int = 20) -> Owned:
    """A cat/coffee task with ``per_label`` images a label, made through the store."""
    owner_id = ensure_owner(ports.items, "usecase@example.com").id
    owner = Space.default_of(owner_id)
    task = tasks.create_task(ports.items, owner, "Cats and coffee", "", TaskType.MULTI_CLASS)
    made = []
    limits = UploadLimits.from_settings(ports.settings.limits)
    for name, sample in (("cat", "chelsea"), ("coffee", "coffee")):
        label = labels.create_label(ports.items, owner, name, LabelType.CATEGORY, "", "")
        tasks.attach_label(ports.items, owner, task.id, label.id)
        for data in distinct_photos(per_label, sample, side=64):
            upload_image(ports.items, ports.blobs, owner, data, limits, label_ids=[label.id])
        made.append(label)
    return Owned(ports, owner_id, owner, tasks.get_task(ports.items, owner, task.id), made)


@pytest.fixture
def owned(tmp_path: Path) -> Owned:
    return trainable(build_ports(local_settings(tmp_path / "data")))
