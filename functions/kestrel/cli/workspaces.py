"""``kestrel workspaces``: list the account's workspaces (``--workspace`` picks one for the others)."""

from __future__ import annotations

import argparse

from kestrel.cli.common import make_client, render_table, short_time


def run(args: argparse.Namespace) -> int:
    client = make_client(args)
    current = client.workspace_id() if client.workspace else None
    rows = [
        (
            ("* " if workspace["id"] == current or (current is None and workspace["is_default"]) else "  ")
            + workspace["name"],
            "default" if workspace["is_default"] else "",
            short_time(workspace.get("created")),
            workspace["id"],
        )
        for workspace in client.workspaces()
    ]
    print(render_table(("NAME", "", "CREATED", "ID"), rows))
    print("(* the workspace the other commands use; choose with --workspace ID|NAME or $KESTREL_WORKSPACE)")
    return 0
