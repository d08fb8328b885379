"""A task that may be trained: two labels with 20 real photos each (crops of two sample photos)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.http import Api
from tests.conftest import RunningServer
from tests.photos import distinct_photos


@dataclass
class TrainableTask:
    api: Api
    task: dict[str, Any]
    labels: list[dict[str, Any]]


def make_trainable_task(api: Api, per_label: int = 20, name: str = "Cats and coffee") -> TrainableTask:
    task = api.create_task(name)
    labels = []
    for label_name, sample in (("cat", "chelsea"), ("coffee", "coffee")):
        label = api.create_label(label_name)
        api.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
        for data in distinct_photos(per_label, sample, side=64):
            api.upload(data, labels=[label["id"]])
        labels.append(label)
    return TrainableTask(api, task, labels)


@contextmanager
def trained_server(
    data_dir: Path, fetch: Any = None, **server_options: Any
) -> Iterator[tuple[RunningServer, TrainableTask]]:
    """A local server in ``data_dir`` with a trained cat/coffee task (version 1 in production);
    ``fetch``: its FetchSettings; ``server_options`` go to ``make_server`` (e.g. ``workers=2`` for a
    pool of worker processes)."""
    from dataclasses import replace

    from kestrel.local.worker import LocalWorker
    from tests.conftest import build_ports, local_settings, running_server

    settings = local_settings(data_dir)
    ports = build_ports(settings if fetch is None else replace(settings, fetch=fetch))
    with running_server(ports, "local", **server_options) as server:
        trainable = make_trainable_task(Api(server.url, server.token))
        trainable.api.post(f"task/{trainable.task['id']}/train/", status=201)
        LocalWorker(ports).run_until_idle()
        yield server, trainable


@pytest.fixture
def trainable(api_server: Any) -> TrainableTask:
    return make_trainable_task(Api(api_server.url, api_server.token))
