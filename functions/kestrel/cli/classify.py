"""``kestrel classify TASK FILES_OR_DIR...``: files through ``classify/`` in batches of 10.

A record the API cannot classify (not an image, say) is reported on its own row; the others
still get their labels. Problems with the request as a whole (unknown task, no trained version,
bad token, no answer) stop the command with one line and exit status 2."""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import os
import stat
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kestrel.cli.client import MAX_INLINE_BODY, ApiError, KestrelClient
from kestrel.cli.common import (
    CliError,
    add_connection_options,
    check_readable,
    make_client,
    progress,
    quote,
    render_table,
    resolve_task,
    scanning,
    train_state,
)
from kestrel.domain.entities import TrainStatus

BATCH_RECORDS = 10  # the API's limit per classify/ request
FORMATS = ("table", "json", "csv")
#: Batch-level answers that would be the same for every batch: stop instead of repeating them.
_FATAL_STATUSES = frozenset({400, 401, 403, 404})


@dataclass
class Result:
    file: str
    label: str | None = None
    probability: float | None = None
    labels: list[dict[str, Any]] = field(default_factory=list)  # every label, by probability
    best_labels: list[dict[str, Any]] | None = None  # multi_label tasks: the labels over threshold
    error: str | None = None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", metavar="TASK", help="the task's name or id")
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="images, or folders to search for images")
    parser.add_argument("--version", type=int, metavar="N", help="the model version (default: the production one)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("--workers", type=int, default=2, metavar="N", help="requests in parallel (default: 2)")
    add_connection_options(parser)


# --- inputs ---


def collect_files(paths: Sequence[str]) -> list[tuple[str, Path]]:
    """(name as shown, path) for every file named or found under a named folder, in order."""
    found: list[tuple[str, Path]] = []
    with scanning() as bar:
        for given in paths:
            path = Path(given).expanduser()
            try:
                is_dir = stat.S_ISDIR(path.stat().st_mode)
            except OSError as error:
                raise CliError(f"cannot read {given}: {error.strerror or error}") from None
            if not is_dir:
                check_readable(path, given)
                found.append((given, path))
                bar.update(1)
                continue
            for current, dirs, names in os.walk(path, onerror=_walk_error):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(n for n in names if not n.startswith(".")):
                    file = Path(current) / name
                    shown = os.path.join(given, os.path.relpath(file, path))
                    check_readable(file, shown)
                    found.append((shown, file))
                    bar.update(1)
    if not found:
        raise CliError(f"no files to classify in {', '.join(paths)}")
    return found


def _walk_error(error: OSError) -> None:
    raise CliError(f"cannot read the folder {error.filename}: {error.strerror or error}")


def batches(files: list[tuple[str, Path]]) -> Iterator[list[tuple[str, Path, int]]]:
    """Up to 10 files per request, and under the request size limit (base64 grows bytes by 4/3)."""
    batch: list[tuple[str, Path, int]] = []
    size = 0
    for shown, path in files:
        encoded = 4 * ((path.stat().st_size + 2) // 3) + 64
        if batch and (len(batch) == BATCH_RECORDS or size + encoded > MAX_INLINE_BODY):
            yield batch
            batch, size = [], 0
        batch.append((shown, path, encoded))
        size += encoded
    if batch:
        yield batch


# --- classify ---


def _result(shown: str, record: dict[str, Any]) -> Result:
    status = record.get("_status") or {}
    if status.get("code", 200) != 200 or "best_label" not in record:
        return Result(shown, error=" ".join(str(status.get("text") or "not classified").split()))
    best = record["best_label"]
    return Result(
        shown,
        label=best.get("name"),
        probability=best.get("prob"),
        labels=[{"name": label["name"], "prob": label["prob"]} for label in record.get("labels", [])],
        best_labels=(
            [{"name": label["name"], "prob": label["prob"]} for label in record["best_labels"]]
            if "best_labels" in record
            else None
        ),
    )


def classify_batch(
    client: KestrelClient, task_id: str, version: int | None, batch: list[tuple[str, Path, int]]
) -> tuple[list[Result], int | None]:
    results: dict[int, Result] = {}
    records: list[dict[str, Any]] = []
    positions: list[int] = []
    for index, (shown, path, encoded) in enumerate(batch):
        if encoded > MAX_INLINE_BODY:
            results[index] = Result(shown, error=f"too large to classify ({path.stat().st_size:,} bytes); resize it")
            continue
        try:
            data = path.read_bytes()
        except OSError as error:
            results[index] = Result(shown, error=f"cannot read it: {error.strerror or error}")
            continue
        records.append({"_base64": base64.b64encode(data).decode("ascii")})
        positions.append(index)
    used_version = None
    if records:
        try:
            answer = client.classify(task_id, records, version)
        except ApiError as error:
            if error.status in _FATAL_STATUSES:
                raise
            for index in positions:  # too large, or the server failed: these files only
                results[index] = Result(batch[index][0], error=error.detail)
        else:
            used_version = answer.get("version")
            for index, record in zip(positions, answer.get("records", []), strict=False):
                results[index] = _result(batch[index][0], record)
    missing = [
        Result(batch[i][0], error="the API returned no answer for it") for i in range(len(batch)) if i not in results
    ]
    return [results[i] for i in sorted(results)] + missing, used_version


# --- output ---


def _tags(result: Result) -> str:
    return ", ".join(f"{tag['name']} ({tag['prob']:.3f})" for tag in result.best_labels or [])


def _render_json(results: list[Result], multi_label: bool) -> str:
    rows = []
    for result in results:
        row: dict[str, Any] = {
            "file": result.file,
            "label": result.label,
            "probability": result.probability,
            "labels": result.labels,
            "error": result.error,
        }
        if multi_label:
            row["best_labels"] = result.best_labels or []
        rows.append(row)
    return json.dumps(rows, indent=2)


def _render_csv(results: list[Result], multi_label: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "label", "probability", *(["best_labels"] if multi_label else []), "error"])
    for result in results:
        probability = "" if result.probability is None else f"{result.probability:.4f}"
        tags = [";".join(tag["name"] for tag in result.best_labels or [])] if multi_label else []
        writer.writerow([result.file, result.label or "", probability, *tags, result.error or ""])
    return out.getvalue().rstrip("\n")


def _render_table(results: list[Result], multi_label: bool) -> str:
    errors = any(result.error for result in results)  # an ERROR column only when there is one
    header = ["FILE", "LABEL", "PROB", *(["TAGS"] if multi_label else []), *(["ERROR"] if errors else [])]
    table_rows = [
        [
            result.file,
            result.label or "-",
            "-" if result.probability is None else f"{result.probability:.3f}",
            *([_tags(result)] if multi_label else []),
            *([result.error or ""] if errors else []),
        ]
        for result in results
    ]
    return render_table(header, table_rows, right=(2,))


_RENDERERS = {"json": _render_json, "csv": _render_csv, "table": _render_table}


def render(results: list[Result], fmt: str, multi_label: bool) -> str:
    return _RENDERERS[fmt](results, multi_label)


def check_version(client: KestrelClient, task: dict[str, Any], version: int | None) -> None:
    """Say what is wrong with the version before any file is sent (and before a progress bar)."""
    name = quote(task["name"])
    if version is None:
        if task["production_version"] < 1:
            raise CliError(
                f"task {task['name']!r} has no version in production yet: kestrel train {name} --wait "
                "(or pass --version N)"
            )
        return
    states = {model["version"]: model for model in client.models(task["id"])}
    if version not in states:
        known = ", ".join(str(v) for v in sorted(states)) or "none yet"
        raise CliError(f"task {task['name']!r} has no version {version} (versions: {known})")
    if train_state(states[version]) != TrainStatus.TRAINED:
        state = states[version]["train_status"]
        raise CliError(f"version {version} of {task['name']!r} is {state}; classify needs a TRAINED one")


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    files = collect_files(args.paths)
    client = make_client(args)
    task = resolve_task(client, args.task)
    check_version(client, task, args.version)
    work = list(batches(files))
    results: list[list[Result]] = [[] for _ in work]
    versions: set[int] = set()
    with (
        progress(total=len(files), unit="img", desc="Classifying") as bar,
        ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="kestrel-classify") as executor,
    ):
        futures = {
            executor.submit(classify_batch, client, task["id"], args.version, batch): n for n, batch in enumerate(work)
        }
        try:
            for future in as_completed(futures):
                batch_results, version = future.result()
                results[futures[future]] = batch_results
                if version is not None:
                    versions.add(version)
                bar.update(len(batch_results))
        except BaseException:
            for pending in futures:  # a fatal answer: the other batches would get the same
                pending.cancel()
            raise
    flat = [result for batch_results in results for result in batch_results]
    print(render(flat, args.format, task["type"] == "multi_label"))
    failed = sum(1 for result in flat if result.error)
    if args.format == "table":
        used = ", ".join(str(v) for v in sorted(versions)) or "-"
        print(f"\n{len(flat) - failed} of {len(flat)} classified by {task['name']!r} version {used}.")
    return 1 if failed else 0
