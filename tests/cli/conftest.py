"""Fixtures for the ``kestrel`` CLI's HTTP commands: a folder tree of real photos, a runner that
calls ``main`` in process, and a training worker for the local gateway."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kestrel.cli.main import main
from kestrel.local.worker import LocalWorker
from tests.conftest import RunningServer
from tests.photos import distinct_photos

KESTREL = str(Path(sys.executable).parent / "kestrel")  # the installed console script
PER_LABEL = 22
LABELS = {"cat": "chelsea", "coffee": "coffee"}  # label folder -> scikit-image sample photo
NOT_AN_IMAGE = "cat/notes.txt"


@dataclass
class Cli:
    """``kestrel ...`` in process, against one server, with stdout and stderr captured."""

    server: RunningServer
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *argv: str, token: str | None = None) -> tuple[int, str, str]:
        self.capsys.readouterr()  # drop what came before this command
        code = main([*argv, "--endpoint", self.server.url, "--token", token or self.server.token])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(local_server: RunningServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    for name in ("KESTREL_ENDPOINT", "KESTREL_TOKEN", "KESTREL_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    return Cli(local_server, capsys)


def write_tree(root: Path, per_label: int = PER_LABEL) -> dict[str, list[str]]:
    """root/cat/NN.jpg and root/coffee/NN.jpg (distinct real photos) and one text file among the
    cats; returns the image file names per label."""
    names: dict[str, list[str]] = {}
    for label, sample in LABELS.items():
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        names[label] = []
        for index, data in enumerate(distinct_photos(per_label, sample, side=96)):
            (folder / f"{index:02d}.jpg").write_bytes(data)
            names[label].append(f"{index:02d}.jpg")
    (root / NOT_AN_IMAGE).write_text("shopping list: cat food, coffee\n")
    return names


@pytest.fixture
def photo_tree(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    write_tree(root)
    return root


@pytest.fixture
def worker(local_server: RunningServer) -> Iterator[LocalWorker]:
    """The local training worker in a background thread, as ``kestrel serve`` runs it."""
    running = LocalWorker(local_server.ports, poll_seconds=0.1)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def task_named(server: RunningServer, name: str) -> dict[str, Any]:
    found = [task for task in server.request("GET", "recognition/v2/task/").json()["results"] if task["name"] == name]
    assert len(found) == 1, found
    return found[0]


def label_counts(server: RunningServer, task: dict[str, Any]) -> dict[str, int]:
    answer = server.request("GET", "recognition/v2/label/", params={"task": task["id"]}).json()
    return {label["name"]: label["images_count"] for label in answer["results"]}


def all_images(server: RunningServer) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = []
    url: str | None = "recognition/v2/training-image/?page_size=1000"
    while url:
        page = server.request("GET", url).json()
        images += page["results"]
        url = page["next"]
    return images


def one_line_error(code: int, err: str, *fragments: str) -> None:
    """The contract for user errors: exit 2, one line on stderr, no traceback."""
    assert code == 2, (code, err)
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("kestrel: error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
