"""What must hold after a crash, checked two ways: in the files the killed server left behind, and
through the API of the restarted one. Each check returns the problems it found (empty when sound),
so a test can record its figures before it fails."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

from kestrel.store.images import image_blob, image_from_item, thumb_blob
from tests.api.http import Api

JPEG_MAGIC = b"\xff\xd8\xff"
_DUPLICATE = re.compile(r"Training image ID: (\S+) already exists")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def duplicate_of(detail: str) -> str | None:
    """The existing image's id in a duplicate upload's ``detail``."""
    found = _DUPLICATE.search(detail)
    return found.group(1) if found else None


# -- the stored state ------------------------------------------------------------------------


def stored_problems(data_dir: Path) -> list[str]:
    """Every owner's items agree with each other and with the blob folder.

    A membership item, the image's label map and the label's ``images_count`` say the same thing;
    a task's label map and the label's task map too; the duplicate marker of each image points at
    it; and each image has its original (with the recorded hash) and a thumbnail on disk."""
    with sqlite3.connect(data_dir / "kestrel.db") as db:
        rows = db.execute("SELECT pk, sk, data FROM items WHERE pk LIKE 'O#%'").fetchall()
    partitions: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for pk, sk, data in rows:
        # An entity of a workspace is keyed <workspace prefix>#<sk> (keys.own_key): group by workspace.
        partitions.setdefault(pk.removesuffix(f"#{sk}"), []).append((sk, json.loads(data)))
    problems: list[str] = []
    for pk, items in partitions.items():
        # A workspace's prefix is O#<owner>#W#<workspace>; its files are under the owner.
        problems += _partition_problems(data_dir, pk.removeprefix("O#").split("#W#")[0], items)
    return problems


def _partition_problems(data_dir: Path, owner: str, items: list[tuple[str, dict[str, Any]]]) -> list[str]:
    def kind(prefix: str) -> list[dict[str, Any]]:
        return [data for sk, data in items if sk.startswith(prefix)]

    images = {item["id"]: item for item in kind("I#")}
    labels = {item["id"]: item for item in kind("L#")}
    tasks = {item["id"]: item for item in kind("T#")}
    memberships = {(item["label_id"], item["image_id"]) for item in kind("M#")}
    hashes = {sk.removeprefix("H#"): data["image_id"] for sk, data in items if sk.startswith("H#")}
    problems: list[str] = []
    for label_id, image_id in memberships:
        if image_id not in images:
            problems.append(f"label {label_id} lists image {image_id}, which does not exist")
        elif label_id not in (images[image_id].get("labels") or {}):
            problems.append(f"label {label_id} lists image {image_id}, which does not carry it")
        if label_id not in labels:
            problems.append(f"a membership of image {image_id} names the deleted label {label_id}")
    for image_id, image in images.items():
        for label_id in image.get("labels") or {}:
            if (label_id, image_id) not in memberships:
                problems.append(f"image {image_id} carries label {label_id}, which does not list it")
            if label_id not in labels:
                problems.append(f"image {image_id} carries the deleted label {label_id}")
        if hashes.get(image["content_hash"]) != image_id:
            problems.append(f"image {image_id}: its duplicate marker points at {hashes.get(image['content_hash'])}")
        problems += _blob_problems(data_dir, owner, image)
    for content_hash, image_id in hashes.items():
        if image_id not in images:
            problems.append(f"the duplicate marker {content_hash[:12]} points at the missing image {image_id}")
    for label_id, label in labels.items():
        listed = sum(1 for (member_of, _) in memberships if member_of == label_id)
        if int(label.get("images_count", 0)) != listed:
            problems.append(f"label {label_id} counts {label.get('images_count')} images but lists {listed}")
        for task_id in label.get("tasks") or {}:
            if task_id not in tasks or label_id not in (tasks[task_id].get("labels") or {}):
                problems.append(f"label {label_id} names task {task_id}, which does not have it")
    for task_id, task in tasks.items():
        for label_id in task.get("labels") or {}:
            if label_id not in labels or task_id not in (labels[label_id].get("tasks") or {}):
                problems.append(f"task {task_id} has label {label_id}, which does not name the task")
    return problems


def _blob_problems(data_dir: Path, owner: str, image: dict[str, Any]) -> list[str]:
    entity = image_from_item(image)  # its files are named as the store names them (<id>.<ext>, or legacy)
    try:
        original = (data_dir / "blobs" / image_blob(entity)).read_bytes()
        thumbnail = (data_dir / "blobs" / thumb_blob(entity)).read_bytes()
    except OSError as error:
        return [f"image {image['id']} is recorded but a file is missing: {error}"]
    problems = []
    if sha256(original) != image["content_hash"] or len(original) != int(image["size_bytes"]):
        problems.append(f"image {image['id']}: the stored original is not the uploaded bytes")
    if not thumbnail.startswith(JPEG_MAGIC):
        problems.append(f"image {image['id']}: the thumbnail is not a JPEG")
    return problems


def integrity_problems(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        result = [str(row[0]) for row in db.execute("PRAGMA integrity_check").fetchall()]
    return [] if result == ["ok"] else [f"PRAGMA integrity_check: {'; '.join(result)}"]


def train_state(database: Path) -> tuple[list[tuple[str, str, int]], int, int]:
    """(train_jobs rows as (name, status, attempts), queued requests, dead letters)."""
    with sqlite3.connect(database) as db:
        jobs = [(str(n), str(s), int(a)) for n, s, a in db.execute("SELECT name, status, attempts FROM train_jobs")]
        queued = int(db.execute("SELECT COUNT(*) FROM train_queue").fetchone()[0])
        dead = int(db.execute("SELECT COUNT(*) FROM train_dead_letters").fetchone()[0])
    return jobs, queued, dead


def _snapshot(database: Path, *queries: str) -> list[list[tuple[Any, ...]]]:
    """The rows of each query, all read in one transaction (the server may be writing)."""
    with sqlite3.connect(database, isolation_level=None) as db:
        db.execute("BEGIN")
        rows = [db.execute(query).fetchall() for query in queries]
        db.execute("COMMIT")
    return rows


def _versions(database: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(every model version, every task), from one snapshot."""
    models, tasks = _snapshot(
        database,
        "SELECT data FROM items WHERE pk LIKE 'O#%' AND sk LIKE 'V#%'",
        "SELECT data FROM items WHERE pk LIKE 'O#%' AND sk LIKE 'T#%'",
    )
    return [json.loads(row[0]) for row in models], [json.loads(row[0]) for row in tasks]


def unfinished_versions(database: Path) -> list[str]:
    """The versions still Waiting or Training, as "version n (id): status"."""
    return [
        f"version {model['version']} ({model['id']}): {model['train_status']}"
        for model in _versions(database)[0]
        if model["train_status"] not in ("TRAINED", "FAILED")
    ]


def wait_until_finished(database: Path, timeout: float) -> list[str]:
    """The versions not yet Trained or Failed after ``timeout`` (none: every version ended)."""
    deadline = time.monotonic() + timeout
    while (left := unfinished_versions(database)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def task_status_problems(database: Path) -> list[str]:
    """Once every version has ended: each task shows the state of its newest version."""
    models, tasks = _versions(database)
    newest: dict[str, dict[str, Any]] = {}
    for model in models:
        if model["version"] > newest.get(model["task_id"], {}).get("version", 0):
            newest[model["task_id"]] = model
    problems = []
    for task in tasks:
        last = newest.get(task["id"])
        if last is not None and task.get("last_train_status") != last["train_status"]:
            problems.append(
                f"task {task['id']} shows {task.get('last_train_status')} (versions_created "
                f"{task.get('versions_created')}); its newest version {last['version']} is {last['train_status']}"
            )
    return problems


# -- through the API ---------------------------------------------------------------------------


def all_pages(api: Api, path: str, problems: list[str]) -> list[dict[str, Any]]:
    """Every result of a listing, following ``next``; the listing's ``count`` must match them."""
    page = api.get(path)
    count, results = page["count"], list(page["results"])
    while page["next"]:
        page = api.get(page["next"])
        results += page["results"]
    if count != len(results):
        problems.append(f"{path} says count {count} but lists {len(results)}")
    return results


def label_count_problems(api: Api, listed_images: list[dict[str, Any]]) -> list[str]:
    """Each label's ``images_count`` equals its listing and the images that carry it;
    its ``tasks_count`` equals the tasks that have it."""
    problems: list[str] = []
    carried = Counter(label["id"] for image in listed_images for label in image["labels"])
    tasks = all_pages(api, "task/?page_size=1000", problems)
    attached = Counter(label["id"] for task in tasks for label in task["labels"])
    for label in all_pages(api, "label/?page_size=1000", problems):
        listed = all_pages(api, f"training-image/?labels={label['id']}&page_size=200", problems)
        ids = {image["id"] for image in listed}
        if len(ids) != len(listed):
            problems.append(f"label {label['id']}: its listing repeats images")
        if not label["images_count"] == len(listed) == carried[label["id"]]:
            problems.append(
                f"label {label['id']} counts {label['images_count']} images, lists {len(listed)}, "
                f"and {carried[label['id']]} images carry it"
            )
        if label["tasks_count"] != attached[label["id"]]:
            problems.append(f"label {label['id']} counts {label['tasks_count']} tasks, {attached[label['id']]} have it")
    return problems


def image_problems(api: Api, image_id: str, content_hash: str, label_ids: set[str]) -> list[str]:
    """The image answers, with these labels, its original is these bytes, its thumbnail a JPEG."""
    response = api.call("GET", f"training-image/{image_id}")
    if response.status_code != 200:
        return [f"image {image_id}: GET answered {response.status_code} {response.text[:200]}"]
    image = response.json()
    problems = []
    have = {label["id"] for label in image["labels"]}
    if have != label_ids:
        problems.append(f"image {image_id} has labels {sorted(have)}, expected {sorted(label_ids)}")
    original = api.call("GET", image["img_path"])
    if original.status_code != 200 or sha256(original.content) != content_hash:
        problems.append(f"image {image_id}: its file answered {original.status_code}, not the uploaded bytes")
    thumbnail = api.call("GET", image["thumb_img_path"])
    if thumbnail.status_code != 200 or not thumbnail.content.startswith(JPEG_MAGIC):
        problems.append(f"image {image_id}: its thumbnail answered {thumbnail.status_code}, not a JPEG")
    return problems
