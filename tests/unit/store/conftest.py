"""The storage functions called directly: a real SQLite item store and a real blob folder in
``tmp_path`` (no HTTP, no moto). Each test gets its own store: empty, or a copy of the
trainable template for the tests that need a task ready to train."""

from __future__ import annotations

import io
import itertools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from kestrel.adapters import folder_blobs
from kestrel.adapters.folder_blobs import FolderBlobStore
from kestrel.adapters.sqlite_items import SqliteItemStore
from kestrel.adapters.url_signing import UrlSigner
from kestrel.domain.entities import LABEL_TYPE_FOR_TASK, LabelType, Task, TaskType, TrainingImage
from kestrel.domain.training_rules import MIN_IMAGES_PER_LABEL
from kestrel.ports.blobs import BlobStore
from kestrel.ports.items import Item, ItemStore, Write
from kestrel.store import keys
from kestrel.store.accounts import ensure_owner
from kestrel.store.images import remove_label_from_image
from kestrel.store.keys import Space
from kestrel.store.labels import create_label
from kestrel.store.tasks import attach_label, create_task, get_task
from kestrel.usecases.uploads import UploadLimits, upload_image

LIMITS = UploadLimits(max_bytes=1_000_000, max_pixels=10_000_000)
OWNER_EMAIL = "owner@example.com"


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqliteItemStore]:
    """An empty store; for a test that uses ``trainable_task``, a copy of the trainable template."""
    path = tmp_path / "items.db"
    if "trainable_task" in request.fixturenames:
        template: Template = request.getfixturevalue("trainable_template")
        source, copy = sqlite3.connect(template.path), sqlite3.connect(path)
        try:
            source.backup(copy)
        finally:
            source.close()
            copy.close()
    items = SqliteItemStore(path)
    yield items
    items.close()


@pytest.fixture
def blobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BlobStore:
    """The real folder adapter, without its fsync: whether a blob survives a power cut is the
    adapter's concern (tests/contract, tests/crash), and waiting for the disk made up most of the
    time of these tests. Everything else it does (temporary file, rename) is unchanged."""
    monkeypatch.setattr(folder_blobs.os, "fsync", lambda fd: None)
    return FolderBlobStore(tmp_path / "blobs", UrlSigner(b"unit-test-secret"))


@pytest.fixture
def owner(store: ItemStore) -> Space:
    """Where every store function works: the default workspace of a real owner record."""
    return Space.default_of(ensure_owner(store, OWNER_EMAIL).id)


@pytest.fixture
def other_owner(store: ItemStore) -> Space:
    return Space.default_of(ensure_owner(store, "someone-else@example.com").id)


def png(seed: int, side: int = 8) -> bytes:
    """A small PNG whose pixels differ for every ``seed`` below 2**24 (the first pixel spells it)."""
    image = Image.new("RGB", (side, side), ((seed * 37) % 256, (seed * 91) % 256, (seed * 13) % 256))
    image.putpixel((0, 0), (seed & 0xFF, (seed >> 8) & 0xFF, (seed >> 16) & 0xFF))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def photo() -> Callable[[], bytes]:
    """``photo()``: the bytes of an image no earlier call in the test returned."""
    counter = itertools.count(1)
    return lambda: png(next(counter))


Upload = Callable[..., TrainingImage]


@pytest.fixture
def upload(store: ItemStore, blobs: BlobStore, owner: Space, photo: Callable[[], bytes]) -> Upload:
    """``upload(labels=[...], data=..., **options)``: ``upload_image`` for ``owner`` with these tests'
    limits, of a fresh photo unless ``data`` is given (one place to follow its signature)."""

    def send(labels: list[str] | None = None, data: bytes | None = None, **options: Any) -> TrainingImage:
        return upload_image(store, blobs, owner, photo() if data is None else data, LIMITS, label_ids=labels, **options)

    return send


NewLabel = Callable[..., str]


@pytest.fixture
def new_label(store: ItemStore, owner: Space) -> NewLabel:
    """``new_label(name, type=LabelType.CATEGORY)``: a new label of ``owner``; its id."""

    def create(name: str, label_type: LabelType = LabelType.CATEGORY) -> str:
        return create_label(store, owner, name, label_type, "", "").id

    return create


TrainableTask = Callable[..., Task]

#: The tasks the template holds, by type: as many as one test may ask for.
TEMPLATE_TASKS = (TaskType.MULTI_CLASS, TaskType.MULTI_CLASS, TaskType.MULTI_LABEL)
_TEMPLATE_SEEDS = 1_000_000  # its photos' seeds: never those a test's ``photo()`` gives


@dataclass(frozen=True)
class Template:
    path: Path
    tasks: tuple[tuple[TaskType, str], ...]  # (type, task id), in TEMPLATE_TASKS order


@pytest.fixture(scope="session")
def trainable_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """A store (built once per test process, copied for each test) holding the owner and the
    tasks of TEMPLATE_TASKS, each with two labels of its type, "first" and "second", on 20 images
    each: the minimum to train. Built by the store's own functions; 40 uploads serve every task
    (each image carries the "first" or the "second" label of every task), as uploading 40 images
    per task for each test made up most of these tests' time. The images' files are not copied
    with the store: no test that uses the template reads them."""
    root = tmp_path_factory.mktemp("trainable-template")
    items = SqliteItemStore(root / "items.db")
    blob_store = FolderBlobStore(root / "blobs", UrlSigner(b"unit-test-secret"))
    owner = Space.default_of(ensure_owner(items, OWNER_EMAIL).id)
    tasks: list[tuple[TaskType, str]] = []
    labels: dict[str, list[str]] = {"first": [], "second": []}
    for number, task_type in enumerate(TEMPLATE_TASKS, start=1):
        task = create_task(items, owner, f"{task_type.value} task {number}", "", task_type)
        for name, label_ids in labels.items():
            label_id = create_label(items, owner, name, LABEL_TYPE_FOR_TASK[task_type], "", "").id
            attach_label(items, owner, task.id, label_id)
            label_ids.append(label_id)
        tasks.append((task_type, task.id))
    seeds = itertools.count(_TEMPLATE_SEEDS)
    for label_ids in labels.values():
        for _ in range(MIN_IMAGES_PER_LABEL):
            upload_image(items, blob_store, owner, png(next(seeds)), LIMITS, label_ids=label_ids)
    items.close()
    return Template(root / "items.db", tuple(tasks))


@pytest.fixture
def trainable_task(store: ItemStore, owner: Space, trainable_template: Template) -> TrainableTask:
    """``trainable_task(task_type=TaskType.MULTI_CLASS, images=20)``: a task of the template
    (not handed out before in this test) whose labels "first" and "second" are on ``images``
    images each (at most 20: the others lose the label, through the store)."""
    unused = list(trainable_template.tasks)

    def take(task_type: TaskType = TaskType.MULTI_CLASS, images: int = MIN_IMAGES_PER_LABEL) -> Task:
        assert images <= MIN_IMAGES_PER_LABEL, "the template's labels have 20 images each"
        chosen = next((entry for entry in unused if entry[0] == task_type), None)
        assert chosen is not None, f"the template holds no more {task_type.value} tasks (see TEMPLATE_TASKS)"
        unused.remove(chosen)
        task = get_task(store, owner, chosen[1])
        for label_id in task.label_ids:
            if label_id == task.negative_label_id:
                continue
            memberships = space_items(store, owner, keys.membership_ord_prefix(label_id))
            for membership in list(memberships)[images:]:
                remove_label_from_image(store, owner, str(membership["image_id"]), label_id)
        return get_task(store, owner, task.id)

    return take


def space_items(store: ItemStore, space: Space, prefix: str = "") -> list[Item]:
    """Every item of the workspace whose sort key starts with ``prefix``, in sort-key order (what
    the workspace's one partition held before lists), read from the SQLite file: a check that
    nothing is left behind must not rely on the lists the code under test maintains."""
    assert isinstance(store, SqliteItemStore)
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT pk, sk FROM items WHERE sk >= ? ORDER BY sk", (prefix,)).fetchall()
    found = [(pk, sk) for pk, sk in rows if sk.startswith(prefix) and pk == keys.own_key(space, sk)[0]]
    return store.batch_get(found)


class _RacingStore(SqliteItemStore):
    """The same database through another store object: before each of its next ``times``
    transactions, ``competitor`` (another request, on the plain store) writes first."""

    def __init__(self, plain: SqliteItemStore, competitor: Callable[[ItemStore], object], times: int) -> None:
        super().__init__(plain.path)
        self._plain = plain
        self._competitor = competitor
        self.races_left = times

    def transact(self, writes: Sequence[Write]) -> None:
        if self.races_left > 0:
            self.races_left -= 1
            self._competitor(self._plain)
        super().transact(writes)


Racing = Callable[..., SqliteItemStore]


@pytest.fixture
def racing(store: SqliteItemStore) -> Iterator[Racing]:
    """``racing(competitor, times=1)``: ``store``'s database as seen by a request that loses the
    race ``times`` times: ``competitor(store)`` runs just before each of its transactions."""
    opened: list[SqliteItemStore] = []

    def make(competitor: Callable[[ItemStore], object], times: int = 1) -> SqliteItemStore:
        racer = _RacingStore(store, competitor, times)
        opened.append(racer)
        return racer

    yield make
    for racer in opened:
        racer.close()
