"""What the ``kestrel`` commands that talk to an API share: connection options, the client,
finding a task by name or id, tables, progress bars, and the one error type users can fix."""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kestrel.cli.client import ApiError, KestrelClient
from kestrel.domain.entities import ID_PATTERN, TrainStatus

ENV_ENDPOINT = "KESTREL_ENDPOINT"
ENV_TOKEN = "KESTREL_TOKEN"
ENV_WORKSPACE = "KESTREL_WORKSPACE"
DEFAULT_ENDPOINT = "http://127.0.0.1:8000/"
#: What a task needs before it can be trained (DESIGN §4); only used for hints, the API decides.
MIN_LABELS = 2
MIN_IMAGES_PER_LABEL = 20
_ID = re.compile(ID_PATTERN)


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """``--endpoint`` and ``--token``, accepted before or after the command name.

    SUPPRESS keeps a subcommand's unset option from overwriting what was given before it."""
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        default=argparse.SUPPRESS,
        help=f"the Kestrel API (default: ${ENV_ENDPOINT}, else {DEFAULT_ENDPOINT})",
    )
    parser.add_argument("--token", metavar="KEY", default=argparse.SUPPRESS, help=f"API token (default: ${ENV_TOKEN})")
    parser.add_argument(
        "--workspace",
        metavar="ID|NAME",
        default=argparse.SUPPRESS,
        help=f"the workspace to work in, by id or name (default: ${ENV_WORKSPACE}, else the default workspace)",
    )


def make_client(args: argparse.Namespace) -> KestrelClient:
    endpoint = getattr(args, "endpoint", None) or os.environ.get(ENV_ENDPOINT) or DEFAULT_ENDPOINT
    token = getattr(args, "token", None) or os.environ.get(ENV_TOKEN)
    if not token:
        raise CliError(
            f"no API token: pass --token KEY or set {ENV_TOKEN} "
            "(`kestrel serve` prints one on first start; `kestrel token create --email ...` makes more)"
        )
    workspace = getattr(args, "workspace", None) or os.environ.get(ENV_WORKSPACE) or None
    return KestrelClient(endpoint, token.strip(), workspace=workspace)


def check_readable(path: Path, shown: str) -> None:
    """Fail now, with the file's name, rather than after half the work: only regular files that
    open (a FIFO would block, a folder given where a file is expected cannot be read)."""
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise CliError(f"cannot read {shown}: not a regular file")
        with path.open("rb"):
            pass
    except OSError as error:
        raise CliError(f"cannot read {shown}: {error.strerror or error}") from None


def looks_like_id(ref: str) -> bool:
    return bool(_ID.match(ref))


def find_task(client: KestrelClient, ref: str) -> dict[str, Any] | None:
    """The task whose id or exact name is ``ref``; None if there is none."""
    if looks_like_id(ref):
        try:
            return client.task(ref)
        except ApiError as error:
            if error.status != 404:
                raise
    named = [task for task in client.tasks(search=ref) if task["name"] == ref]
    if len(named) > 1:
        ids = ", ".join(task["id"] for task in named)
        raise CliError(f"{len(named)} tasks are named {ref!r}; give the id of the one you mean ({ids})")
    return named[0] if named else None


def resolve_task(client: KestrelClient, ref: str) -> dict[str, Any]:
    task = find_task(client, ref)
    if task is None:
        raise CliError(f"no task named {ref!r} (or with that id) at {client.endpoint}; `kestrel tasks` lists them")
    return task


def label_names(task: dict[str, Any], metrics: dict[str, Any] | None = None) -> dict[str, str]:
    """Label id -> name, from the model card (names at training time) and then the task."""
    names = {label["id"]: label["name"] for label in task.get("labels", [])}
    for label in (metrics or {}).get("labels", []) or []:
        names.setdefault(label["id"], label["name"])
    return names


def progress(**options: Any) -> Any:
    """A progress bar on stderr, so stdout stays clean for tables, JSON and CSV.

    ``TQDM_DISABLE=1`` in the environment turns bars off (tqdm reads TQDM_* variables)."""
    options.setdefault("dynamic_ncols", True)
    return tqdm(file=sys.stderr, **options)


def scanning() -> Any:
    """A counter for walking input folders; shown only if the walk takes over a second, so a
    quick scan that ends in an error still leaves one line on stderr."""
    return progress(desc="Scanning", unit=" files", delay=1.0)


def render_table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()) -> str:
    """Columns padded to their widest cell; columns in ``right`` (numbers) aligned right."""
    body = [list(header), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in body) for i in range(len(header))]
    right_set = set(right)
    lines = []
    for row in body:
        cells = [
            cell.rjust(width) if i in right_set else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def short_time(stamp: str | None) -> str:
    """'2026-11-24T11:06:19.329488Z' -> '2026-11-24 11:06' (UTC)."""
    if not stamp:
        return "-"
    return stamp.replace("T", " ")[:16]


def quote(name: str) -> str:
    """A task name as a shell argument, for the commands the CLI suggests."""
    return name if re.fullmatch(r"[\w.@%+=:,/-]+", name) else "'" + name.replace("'", "'\\''") + "'"


def train_state(model: dict[str, Any]) -> TrainStatus | None:
    """A version's state from any Kestrel (older servers spelt it "Trained"); None if unknown."""
    try:
        return TrainStatus.parse(str(model.get("train_status")))
    except ValueError:
        return None
