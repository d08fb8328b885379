"""``kestrel similar TASK FILES_OR_DIR...``: each file's nearest training images through
``task/{id}/similar/``, in batches of 10 (the files are found and sent as ``classify`` does).

A file the API cannot read is reported on its own row; problems with the request as a whole
(unknown task, no trained version, a version without descriptors) stop the command with one
line and exit status 2."""

from __future__ import annotations

import argparse
import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kestrel.cli.classify import batches, check_version, collect_files
from kestrel.cli.client import MAX_INLINE_BODY, KestrelClient
from kestrel.cli.common import CliError, add_connection_options, make_client, progress, render_table, resolve_task

FORMATS = ("table", "json")
MAX_K = 100  # the API's bound


@dataclass
class Found:
    file: str
    similar: list[dict[str, Any]] = field(default_factory=list)  # {id, similarity, labels}
    error: str | None = None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", metavar="TASK", help="the task's name or id")
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="images, or folders to search for images")
    parser.add_argument("-k", type=int, default=5, metavar="K", help=f"training images per file (1-{MAX_K}; default 5)")
    parser.add_argument("--version", type=int, metavar="N", help="the model version (default: the production one)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    add_connection_options(parser)


def _found(shown: str, record: dict[str, Any]) -> Found:
    status = record.get("_status") or {}
    if status.get("code", 200) != 200 or "similar" not in record:
        return Found(shown, error=" ".join(str(status.get("text") or "not searched").split()))
    neighbours = [
        {"id": n["id"], "similarity": n["similarity"], "labels": [label["name"] for label in n["labels"]]}
        for n in record["similar"]
    ]
    return Found(shown, neighbours)


def search_batch(
    client: KestrelClient, task_id: str, k: int, version: int | None, batch: list[tuple[str, Path, int]]
) -> list[Found]:
    """One request for the batch's readable files; the others get their reason."""
    found: dict[int, Found] = {}
    records, positions = [], []
    for index, (shown, path, encoded) in enumerate(batch):
        if encoded > MAX_INLINE_BODY:
            found[index] = Found(shown, error=f"too large to send ({path.stat().st_size:,} bytes); resize it")
            continue
        try:
            records.append({"_base64": base64.b64encode(path.read_bytes()).decode("ascii")})
        except OSError as error:
            found[index] = Found(shown, error=f"cannot read it: {error.strerror or error}")
            continue
        positions.append(index)
    if records:
        answer = client.similar(task_id, records, k, version)
        for index, record in zip(positions, answer.get("records", []), strict=False):
            found[index] = _found(batch[index][0], record)
    return [found.get(i, Found(batch[i][0], error="the API returned no answer for it")) for i in range(len(batch))]


def render(results: list[Found], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{"file": r.file, "similar": r.similar, "error": r.error} for r in results], indent=2)
    rows = []
    for result in results:
        if result.error:
            rows.append([result.file, "-", "-", "-", result.error])
        for rank, n in enumerate(result.similar, 1):
            rows.append([result.file, str(rank), f"{n['similarity']:.3f}", n["id"], ", ".join(n["labels"]) or "-"])
    return render_table(["FILE", "RANK", "SIMILARITY", "TRAINING IMAGE", "LABELS"], rows, right=(1, 2))


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.k <= MAX_K:
        raise CliError(f"-k must be 1 to {MAX_K}")
    files = collect_files(args.paths)
    client = make_client(args)
    task = resolve_task(client, args.task)
    check_version(client, task, args.version)
    results: list[Found] = []
    with progress(total=len(files), unit="img", desc="Searching") as bar:
        for batch in batches(files):
            found = search_batch(client, task["id"], args.k, args.version, batch)
            results += found
            bar.update(len(found))
    print(render(results, args.format))
    return 1 if any(result.error for result in results) else 0
