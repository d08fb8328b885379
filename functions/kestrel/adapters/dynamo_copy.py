"""Copy every item of one DynamoDB table into another, re-keyed: the layout migrations.

The source is scanned in ``segments`` parallel segments, one page (at most 1 MB) per segment at a
time, so memory stays bounded whatever the table's size. Each item goes through ``rekey``, which
sees the key attributes (``pk``, ``sk``, ``lst``, ``ord``) as strings and every other attribute
exactly as stored (an opaque AttributeValue it must pass on untouched: no number or binary value
is ever decoded and re-encoded). The results are written with BatchWriteItem, 25 at a time, with
unprocessed items retried.

Idempotent: ``rekey`` is deterministic and writing the same item again changes nothing, so a copy
can be repeated. Resumable: once a page is written, its segment's position (the scan's
LastEvaluatedKey) is saved in the checkpoint file; a run given the same file starts each segment
where it stopped (at worst one page is written twice)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kestrel.adapters.dynamo_items import _ATTEMPTS, LIST_INDEX, StoreBusy, _backoff
from kestrel.ports.items import LIST, ORD, PK, SK, Item

Rekey = Callable[[Item], Item]
_BATCH_WRITE = 25  # BatchWriteItem's limit
_STRINGS = (PK, SK, LIST, ORD)  # the attributes ``rekey`` sees decoded


@dataclass
class CopyReport:
    read: int = 0
    written: int = 0
    resumed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, read: int, written: int) -> None:
        with self.lock:
            self.read += read
            self.written += written


class _Checkpoint:
    """Where each segment's scan stands: ``None`` not started, a key mid-way, ``"done"`` finished."""

    def __init__(self, path: Path | None, source: str, target: str, segments: int) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.header = {"source": source, "target": target, "segments": segments}
        self.positions: dict[str, Any] = {str(n): None for n in range(segments)}
        self.resumed = False
        if path is not None and path.exists():
            saved = json.loads(path.read_text())
            if {key: saved.get(key) for key in self.header} != self.header:
                raise ValueError(
                    f"the checkpoint {path} belongs to another copy ({saved.get('source')} -> {saved.get('target')}, "
                    f"{saved.get('segments')} segments); give another file or the same options"
                )
            self.positions = saved["positions"]
            self.resumed = True

    def position(self, segment: int) -> Any:
        return self.positions[str(segment)]

    def save(self, segment: int, position: Any) -> None:
        with self._lock:
            self.positions[str(segment)] = position
            if self.path is None:
                return
            temporary = self.path.with_name(self.path.name + ".tmp")
            temporary.write_text(json.dumps({**self.header, "positions": self.positions}))
            os.replace(temporary, self.path)  # a crash leaves the old checkpoint or the new, never half


def rekey_raw(raw: dict[str, Any], rekey: Rekey) -> dict[str, Any]:
    """One stored item (AttributeValues) through ``rekey``: key attributes decoded, the rest opaque."""
    item: Item = {name: (value["S"] if name in _STRINGS else value) for name, value in raw.items()}
    moved = rekey(item)
    return {
        name: ({"S": str(value)} if name in _STRINGS else value) for name, value in moved.items() if value is not None
    }


def check_target(client: Any, source: str, target: str) -> None:
    """Refuse a copy onto itself, or into a table without the list index of layout 2."""
    if source == target:
        raise ValueError("the source and the target are the same table; the target is the new table")
    described = client.describe_table(TableName=target)["Table"]
    indexes = {index["IndexName"] for index in described.get("GlobalSecondaryIndexes", [])}
    if LIST_INDEX not in indexes:
        raise ValueError(f"table {target} has no global index {LIST_INDEX}: it is not a table of the partition layout")


def copy_table(
    client: Any,
    source: str,
    target: str,
    rekey: Rekey,
    *,
    segments: int = 1,
    checkpoint: Path | None = None,
    page_size: int | None = None,
    progress: Callable[[CopyReport], None] | None = None,
) -> CopyReport:
    """Copy every item of ``source`` into ``target`` through ``rekey``; see the module's docstring.

    ``page_size`` caps the items per scan page (None: DynamoDB's 1 MB pages); tests use it."""
    if not 1 <= segments <= 1000:
        raise ValueError("segments must be between 1 and 1000")
    check_target(client, source, target)
    state = _Checkpoint(checkpoint, source, target, segments)
    report = CopyReport(resumed=state.resumed)

    def run(segment: int) -> None:
        position = state.position(segment)
        while position != "done":
            request: dict[str, Any] = {"TableName": source, "Segment": segment, "TotalSegments": segments}
            request["ConsistentRead"] = True
            if page_size is not None:
                request["Limit"] = page_size
            if position is not None:
                request["ExclusiveStartKey"] = position
            page = client.scan(**request)
            raws = page.get("Items", [])
            moved = [rekey_raw(raw, rekey) for raw in raws]
            _write(client, target, moved)
            report.add(len(raws), len(moved))
            position = page.get("LastEvaluatedKey") or "done"
            state.save(segment, position)
            if progress is not None:
                progress(report)

    with ThreadPoolExecutor(max_workers=segments) as pool:
        for finished in [pool.submit(run, segment) for segment in range(segments)]:
            finished.result()  # re-raises a segment's failure
    return report


def _write(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), _BATCH_WRITE):
        pending = [{"PutRequest": {"Item": item}} for item in items[start : start + _BATCH_WRITE]]
        attempt = 0
        while pending:
            response = client.batch_write_item(RequestItems={table: pending})
            pending = response.get("UnprocessedItems", {}).get(table, [])
            if pending:
                if attempt >= _ATTEMPTS:
                    raise StoreBusy(f"DynamoDB left {len(pending)} items of {table} unwritten")
                _backoff(attempt)
                attempt += 1
