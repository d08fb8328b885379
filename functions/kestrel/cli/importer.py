"""``kestrel import DIR --task NAME``: a folder tree (one sub-folder per label) into a task.

Safe to run again after an interruption or with more files: the API stores each content once
and answers a repeated upload with 409 and the existing image's id, so a re-run sends every
file again but stores only the new ones, and makes sure the old ones carry their folder's label.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import stat
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kestrel.cli.client import ApiError, ClientError, KestrelClient
from kestrel.cli.common import (
    MIN_IMAGES_PER_LABEL,
    MIN_LABELS,
    CliError,
    add_connection_options,
    check_readable,
    find_task,
    looks_like_id,
    make_client,
    progress,
    quote,
    render_table,
    scanning,
)

TASK_TYPES = ("multi_class", "multi_label")
#: The label type each task type takes (the API refuses the other kind).
LABEL_TYPE = {"multi_class": "category", "multi_label": "tag"}


@dataclass(frozen=True)
class SourceFile:
    path: Path
    rel: str  # "cat/1.jpg": how the file is named in reports and in the image's meta_data
    label: str  # the name of its top-level folder


@dataclass
class Tree:
    labels: list[str]
    files: list[SourceFile]
    ignored: list[str]  # files directly in DIR: they have no label folder


@dataclass
class Outcome:
    kind: str  # "uploaded", "skipped", "failed", or "cancelled" (not started: the run is stopping)
    reason: str = ""
    warning: str = ""


@dataclass
class Report:
    uploaded: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.uploaded + self.skipped + len(self.failed)


class FatalUploadError(Exception):
    """Every further upload would fail the same way (endpoint gone, token revoked): stop."""

    def __init__(self, error: ClientError) -> None:
        super().__init__(str(error))
        self.error = error


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="a folder with one sub-folder of images per label")
    parser.add_argument("--task", required=True, metavar="NAME", help="the task's name (created if missing) or id")
    parser.add_argument(
        "--type",
        choices=TASK_TYPES,
        help="the type of a task that is created (default: multi_class); an existing task must match",
    )
    parser.add_argument("--workers", type=int, default=4, metavar="N", help="parallel uploads (default: 4)")
    add_connection_options(parser)


# --- the folder tree ---


def _hidden(name: str) -> bool:
    return name.startswith(".")  # .DS_Store, .git, editor swap files: never meant as images


def _walk(folder: Path) -> Iterator[Path]:
    def fail(error: OSError) -> None:
        raise CliError(f"cannot read the folder {error.filename}: {error.strerror or error}")

    for current, dirs, names in os.walk(folder, onerror=fail):
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        for name in sorted(names):
            if not _hidden(name):
                yield Path(current) / name


def scan(root: Path) -> Tree:
    """The label folders of ``root`` and every file under them (sub-folders included)."""
    if not root.exists():
        raise CliError(f"{root}: no such folder")
    if not root.is_dir():
        raise CliError(f"{root} is not a folder; import takes a folder with one sub-folder of images per label")
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except OSError as error:
        raise CliError(f"cannot read the folder {root}: {error.strerror or error}") from None
    labels: list[str] = []
    files: list[SourceFile] = []
    ignored: list[str] = []
    with scanning() as bar:
        for entry in entries:
            if _hidden(entry.name):
                continue
            if not entry.is_dir():
                ignored.append(entry.name)
                continue
            labels.append(entry.name)
            for path in _walk(Path(entry.path)):
                # Unreadable files stop the import before it starts, like every input error.
                check_readable(path, str(path))
                files.append(SourceFile(path, path.relative_to(root).as_posix(), entry.name))
                bar.update(1)
    if not labels:
        raise CliError(
            f"{root} has no sub-folders; put each label's images in a folder named after the label "
            f"(e.g. {root / 'cat' / '1.jpg'})"
        )
    return Tree(labels, files, ignored)


# --- task and labels ---


def _task_for_import(client: KestrelClient, ref: str, task_type: str | None) -> tuple[dict[str, Any], bool]:
    task = find_task(client, ref)
    if task is None:
        if looks_like_id(ref):  # an id that is not there is a mistake, not the name of a new task
            raise CliError(f"no task with the id {ref} at {client.endpoint}; `kestrel tasks` lists them")
        return client.create_task(ref, task_type or "multi_class"), True
    if task_type and task["type"] != task_type:
        raise CliError(f"task {task['name']!r} is {task['type']}, not {task_type}; drop --type or pick another task")
    return task, False


def _labels_for_import(
    client: KestrelClient, task: dict[str, Any], names: list[str]
) -> tuple[dict[str, str], list[str]]:
    """Label name -> id for every folder, creating and attaching what is missing; and what was done."""
    wanted = LABEL_TYPE[task["type"]]
    attached = {label["name"]: label["id"] for label in task["labels"] if not label.get("negative_for_task")}
    ids: dict[str, str] = {}
    actions: list[str] = []
    for name in names:
        if name in attached:
            ids[name] = attached[name]
            continue
        # Reuse the owner's label of that exact name (search is a substring match) and type.
        existing = [
            label
            for label in client.labels(search=name)
            if label["name"] == name and label["type"] == wanted and not label.get("negative_for_task")
        ]
        if existing:
            label = existing[0]
            actions.append(f"attached the existing label {name!r}")
        else:
            label = client.create_label(name, wanted)
            actions.append(f"created the label {name!r}")
        client.add_label_to_task(task["id"], label["id"])
        ids[name] = label["id"]
    return ids, actions


# --- uploads ---


class _ContentLocks:
    """One lock per content hash: the same bytes found twice in the tree are uploaded one at a
    time, so the second copy reliably meets the first as a duplicate instead of racing it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    def __call__(self, digest: str) -> threading.Lock:
        with self._guard:
            return self._locks[digest]


def _read(path: Path) -> bytes:
    # A FIFO or device would block or never end: only regular files are read.
    if not stat.S_ISREG(path.stat().st_mode):
        raise OSError(f"{path} is not a regular file")
    return path.read_bytes()


def _import_file(
    client: KestrelClient,
    item: SourceFile,
    label_id: str,
    task: dict[str, Any],
    locks: _ContentLocks,
    stop: threading.Event,
) -> Outcome:
    if stop.is_set():  # another upload hit a fatal error, or Ctrl-C: do not start new ones
        return Outcome("cancelled")
    try:
        data = _read(item.path)
    except OSError as error:
        return Outcome("failed", f"cannot read it: {error.strerror or error}")
    digest = hashlib.sha256(data).hexdigest()
    try:
        with locks(digest):
            upload = client.upload_image(data, [label_id], meta_data={"file": item.rel})
            if upload.created:
                return Outcome("uploaded")
            # Already stored (an earlier run, or the same bytes elsewhere in the tree): make sure
            # it carries this folder's label too. add-label is idempotent.
            image = client.add_label_to_image(upload.image_id, label_id)
    except ApiError as error:
        if error.status in (401, 403):
            stop.set()
            raise FatalUploadError(error) from None
        return Outcome("failed", error.detail)
    except ClientError as error:  # no answer at all: the endpoint is gone, do not try the rest
        stop.set()
        raise FatalUploadError(error) from None
    return Outcome("skipped", warning=_label_clash(item, image, task))


def _label_clash(item: SourceFile, image: dict[str, Any], task: dict[str, Any]) -> str:
    """A multi_class task trains only on images with exactly one of its labels: say so when an
    image ends up with two (the same picture in two folders, or moved between runs)."""
    if task["type"] != "multi_class":
        return ""
    own = {label["id"] for label in task["labels"]}
    names = sorted(label["name"] for label in image.get("labels", []) if label["id"] in own)
    if len(names) < 2:
        return ""
    return (
        f"{item.rel} is the same picture as an image labelled {', '.join(repr(n) for n in names)}; "
        "a multi_class task leaves out images with two of its labels"
    )


def upload_all(
    client: KestrelClient, files: list[SourceFile], label_ids: dict[str, str], task: dict[str, Any], workers: int
) -> Report:
    """Upload in parallel with a progress bar.

    On Ctrl-C (KeyboardInterrupt) or a FatalUploadError, the uploads under way are let finish
    (each image is then whole on the server or absent), the queued ones are dropped, and the
    exception propagates with ``.report``: everything that was done, in-flight uploads included."""
    report = Report()
    locks = _ContentLocks()
    counted: set[Future[Outcome]] = set()
    stop = threading.Event()

    def tally(future: Future[Outcome], item: SourceFile) -> None:
        counted.add(future)
        outcome = future.result()
        if outcome.kind == "uploaded":
            report.uploaded += 1
        elif outcome.kind == "skipped":
            report.skipped += 1
        elif outcome.kind == "failed":
            report.failed.append((item.rel, outcome.reason))
        if outcome.warning:
            report.warnings.append(outcome.warning)

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kestrel-import")
    futures: dict[Future[Outcome], SourceFile] = {}
    with progress(total=len(files), unit="img", desc="Uploading") as bar:
        try:
            for item in files:
                futures[executor.submit(_import_file, client, item, label_ids[item.label], task, locks, stop)] = item
            for future in as_completed(futures):
                tally(future, futures[future])
                bar.set_postfix_str(
                    f"uploaded={report.uploaded} skipped={report.skipped} failed={len(report.failed)}", refresh=False
                )
                bar.update(1)
        except BaseException as error:
            stop.set()
            executor.shutdown(wait=True, cancel_futures=True)
            for future, item in futures.items():
                if future.done() and not future.cancelled() and future not in counted and not future.exception():
                    tally(future, item)
            error.report = report  # type: ignore[attr-defined]
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
    return report


# --- the command ---


def _print_summary(
    root: Path,
    task: dict[str, Any],
    created: bool,
    actions: list[str],
    tree: Tree,
    report: Report,
    client: KestrelClient,
) -> None:
    lines = [f"Task {task['name']!r} ({task['type']}, id {task['id']}) at {client.endpoint}"]
    lines += [f"  {action}" for action in (["created the task"] if created else []) + actions]
    lines += [
        f"{root}: {len(tree.files)} files in {len(tree.labels)} label folders",
        f"  uploaded  {report.uploaded}",
        f"  skipped   {report.skipped}  (already in Kestrel; the folder's label is on them)",
        f"  failed    {len(report.failed)}",
    ]
    lines += [f"    {name}: {reason}" for name, reason in sorted(report.failed)]
    if tree.ignored:
        shown = ", ".join(tree.ignored[:10]) + (" ..." if len(tree.ignored) > 10 else "")
        lines.append(f"  ignored   {len(tree.ignored)} (directly in {root}, not in a label folder): {shown}")
    lines += [f"  warning: {warning}" for warning in sorted(report.warnings)]
    print("\n".join(lines), flush=True)


def _label_title(label: dict[str, Any]) -> str:
    """A multi_label task's negative label says what it is (its name may not)."""
    name: str = label["name"]
    if label.get("negative_for_task") and "negative" not in name.lower():
        return f"{name} (negative: images with none of the tags)"
    return name


def _print_labels(client: KestrelClient, task_id: str) -> None:
    task = client.task(task_id)
    labels = sorted(task["labels"], key=lambda label: label["name"])
    rows = [(_label_title(label), str(label["images_count"])) for label in labels]
    print()
    print(render_table(("LABEL", "IMAGES"), rows, right=(1,)))
    positives = [label for label in labels if not label.get("negative_for_task")]
    short = [
        f"{label['name']!r} needs {MIN_IMAGES_PER_LABEL - label['images_count']} more"
        for label in positives
        if label["images_count"] < MIN_IMAGES_PER_LABEL
    ]
    if len(positives) < MIN_LABELS:
        short.insert(0, f"the task needs at least {MIN_LABELS} labels")
    print()
    if short:
        print(f"Not ready to train ({MIN_IMAGES_PER_LABEL} images per label): {'; '.join(short)}.")
    else:
        print(f"Ready to train: kestrel train {quote(task['name'])} --wait")


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    root = Path(args.dir).expanduser()
    tree = scan(root)
    client = make_client(args)
    task, created = _task_for_import(client, args.task, args.type)
    label_ids, actions = _labels_for_import(client, task, tree.labels)
    task = client.task(task["id"])  # with its labels now attached, for the clash check
    try:
        report = upload_all(client, tree.files, label_ids, task, args.workers)
    except KeyboardInterrupt as error:
        partial: Report = getattr(error, "report", Report())
        _print_summary(root, task, created, actions, tree, partial, client)
        print(
            f"kestrel: interrupted after {partial.done} of {len(tree.files)} files; run the same command again "
            "to import the rest (what is already there is skipped)",
            file=sys.stderr,
        )
        return 130
    except FatalUploadError as error:
        _print_summary(root, task, created, actions, tree, getattr(error, "report", Report()), client)
        raise error.error from None
    _print_summary(root, task, created, actions, tree, report, client)
    _print_labels(client, task["id"])
    return 1 if report.failed else 0
