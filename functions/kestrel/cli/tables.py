"""``kestrel table migrate``: copy a DynamoDB item table of the layout before the partition design
into a table of today's layout (docs/operations.md, "Upgrading to the partition layout")."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kestrel.adapters.aws_clients import aws_client
from kestrel.adapters.dynamo_copy import CopyReport, copy_table
from kestrel.cli.common import CliError
from kestrel.store.layout import upgrade_item

MAX_SEGMENTS = 64


def configure_migrate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="the old table (stack output LegacyTableName)")
    parser.add_argument("--target", required=True, help="the new table (stack output TableName)")
    parser.add_argument(
        "--segments",
        type=int,
        default=4,
        help=f"parallel scan segments, 1-{MAX_SEGMENTS} (default 4); keep it the same when resuming",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="file that records how far each segment got; run again with the same file to resume "
        "(default: migrate-<source>-<target>.json in the current folder)",
    )


def run_migrate(args: argparse.Namespace) -> int:
    if not 1 <= args.segments <= MAX_SEGMENTS:
        raise CliError(f"--segments must be between 1 and {MAX_SEGMENTS}, not {args.segments}")
    checkpoint: Path = args.checkpoint or Path(f"migrate-{args.source}-{args.target}.json")

    def progress(report: CopyReport) -> None:
        print(f"\r{report.read:,} items read, {report.written:,} written", end="", file=sys.stderr, flush=True)

    try:
        report = copy_table(
            aws_client("dynamodb"),
            args.source,
            args.target,
            upgrade_item,
            segments=args.segments,
            checkpoint=checkpoint,
            progress=progress,
        )
    except ValueError as error:
        raise CliError(str(error)) from None
    print(file=sys.stderr)
    resumed = " (resumed from the checkpoint)" if report.resumed else ""
    print(f"Copied {report.written:,} items from {args.source} to {args.target}{resumed}.")
    print(f"Checkpoint: {checkpoint} (every segment done; delete it, or keep it as the record).")
    return 0
