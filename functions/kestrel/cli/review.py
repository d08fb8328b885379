"""``kestrel review TASK``: the task's review queue (the stored images the model was least sure
about first), as a table, or the whole queue as CSV with ``--export FILE``."""

from __future__ import annotations

import argparse
import csv
import io
from itertools import islice
from pathlib import Path
from typing import Any

from kestrel.cli.client import KestrelClient
from kestrel.cli.common import CliError, add_connection_options, make_client, quote, render_table, resolve_task

#: Rows the table shows unless --limit says otherwise (the export has them all).
DEFAULT_SHOWN = 20
CSV_COLUMNS = (
    "rank",
    "image_id",
    "uncertainty",
    "suggestion",
    "best_label",
    "best_prob",
    "second_label",
    "second_prob",
    "version",
    "created",
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", metavar="TASK", help="the task's name or id")
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_SHOWN, metavar="N", help=f"rows to print (default {DEFAULT_SHOWN})"
    )
    parser.add_argument("--export", metavar="FILE", help="write the whole queue as CSV to FILE ('-': stdout)")
    add_connection_options(parser)


def queue(client: KestrelClient, task_id: str) -> Any:
    """Every item of the queue, most uncertain first, following the ``next`` links."""
    return client.pages(f"task/{task_id}/review/")


def _row(rank: int, item: dict[str, Any], names: dict[str, str]) -> dict[str, str]:
    prediction = item.get("prediction") or {}
    labels = prediction.get("labels") or []

    def label(index: int) -> tuple[str, str]:
        if index >= len(labels):
            return "", ""
        return str(labels[index]["name"]), f"{labels[index]['prob']:.3f}"

    (best, best_prob), (second, second_prob) = label(0), label(1)
    uncertainty = item.get("uncertainty")
    return {
        "rank": str(rank),
        "image_id": str(item["image"]["id"]),
        "uncertainty": "" if uncertainty is None else f"{uncertainty:.3f}",
        "suggestion": ";".join(names.get(label_id, label_id) for label_id in item.get("suggestion") or []),
        "best_label": best,
        "best_prob": best_prob,
        "second_label": second,
        "second_prob": second_prob,
        "version": str(prediction.get("version", "")),
        "created": str(item["image"].get("created", "")),
    }


def _export(rows: Any, target: str) -> int:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    written = 0
    for row in rows:
        writer.writerow(row)
        written += 1
    if target == "-":
        print(out.getvalue(), end="")
    else:
        try:
            Path(target).expanduser().write_text(out.getvalue(), encoding="utf-8")
        except OSError as error:
            raise CliError(f"cannot write {target}: {error.strerror or error}") from None
    return written


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError(f"--limit must be at least 1, not {args.limit}")
    client = make_client(args)
    task = resolve_task(client, args.task)
    names = {label["id"]: label["name"] for label in task.get("labels", [])}
    rows = (_row(rank, item, names) for rank, item in enumerate(queue(client, task["id"]), start=1))
    if args.export:
        written = _export(rows, args.export)
        if args.export != "-":
            print(f"Wrote {written} queued image(s) of {task['name']!r} to {args.export}.")
        return 0
    summary = client.call("GET", f"task/{task['id']}/review/summary/")
    shown = list(islice(rows, args.limit))
    if not shown:
        print(f"Nothing to review in {task['name']!r}: classify with store_images to fill the queue.")
    else:
        header = ("#", "IMAGE ID", "UNCERTAINTY", "SUGGESTION", "BEST", "PROB", "SECOND", "PROB")
        keys = CSV_COLUMNS[: len(header)]  # the CSV's first columns, in its order
        cells = ([row[key] or "-" for key in keys] for row in shown)  # "-": not classified yet
        print(render_table(header, cells, right=(0, 2, 5, 7)))
        print()
        print(
            f"Most uncertain first; {len(shown)} shown. All of them: kestrel review {quote(task['name'])} --export FILE"
        )
    since = summary["reviewed_since_last_version"]
    version = summary["last_version"]
    after = f"since version {version}" if version is not None else "so far (no version yet)"
    print(f"{summary['queued']} predicted image(s) waiting; {since} reviewed {after}: the next training gains them.")
    return 0
