"""The ``kestrel`` command: run the local service, manage API tokens, and work with any
Kestrel API over HTTP (import, train, models, deploy, classify, similar; see docs/cli.md).

Commands live in one registry (``COMMANDS``); a new command is one more ``Command`` there.
User errors print one line on stderr and exit with status 2; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from kestrel.cli import classify as cli_classify
from kestrel.cli import importer as cli_import
from kestrel.cli import review as cli_review
from kestrel.cli import similar as cli_similar
from kestrel.cli import tables as cli_tables
from kestrel.cli import versions as cli_models
from kestrel.cli import workspaces as cli_workspaces
from kestrel.cli.client import ClientError as HttpClientError
from kestrel.cli.common import CliError, add_connection_options
from kestrel.composition import Ports, build_ports
from kestrel.config import ENV_DATA_DIR, ENV_RUNTIME, ENV_USAGE_PLAN_ID, Settings
from kestrel.domain.errors import KestrelError
from kestrel.store.accounts import (
    TokenInfo,
    create_token,
    ensure_owner,
    give_usage_keys,
    has_owners,
    list_tokens,
    revoke_token,
)

#: The owner ``kestrel serve`` creates in an empty data folder.
ADMIN_EMAIL = "admin@localhost"
EXIT_USAGE = 2

logger = logging.getLogger("kestrel.cli")


__all__ = ["ADMIN_EMAIL", "COMMANDS", "CliError", "Command", "build_parser", "main"]


def _expected_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (CliError, HttpClientError, KestrelError, OSError, sqlite3.Error)
    try:  # only installed where the AWS runtime is used
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return errors
    return (*errors, BotoCoreError, ClientError)


@dataclass(frozen=True)
class Command:
    """One subcommand: its arguments, and either a ``run`` function or subcommands of its own."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    run: Callable[[argparse.Namespace], int] | None = None
    subcommands: tuple[Command, ...] = ()


# --- shared plumbing ---


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"the local data folder (default: ${ENV_DATA_DIR}, else ./data); ignored when {ENV_RUNTIME}=aws",
    )


def _settings(args: argparse.Namespace) -> Settings:
    try:
        settings = Settings.from_env()
    except ValueError as error:
        raise CliError(str(error)) from None
    if getattr(args, "data_dir", None):
        settings = replace(settings, data_dir=Path(args.data_dir).expanduser().resolve())
    return settings


def _ports(settings: Settings) -> Ports:
    if settings.runtime == "local":
        folder = settings.data_dir
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise CliError(f"cannot use {folder} as the data folder: {error.strerror or error}") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise CliError(f"cannot write to the data folder {folder}; pick another with --data-dir")
    try:
        return build_ports(settings)
    except ValueError as error:  # e.g. KESTREL_TABLE missing with KESTREL_RUNTIME=aws
        raise CliError(str(error)) from None


# --- kestrel serve ---


def _configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on; 0 picks a free one")
    parser.add_argument(
        "--threads", type=int, default=8, help="HTTP front threads that parse, queue and answer requests (default: 8)"
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="worker processes per function (classify, API), each answering one request at a time "
        "like a Lambda execution environment (default: one a core, at least 2)",
    )
    parser.add_argument(
        "--public-url",
        type=_public_url,
        default=None,
        metavar="URL",
        help="the URL clients reach this server at (e.g. https://kestrel.example.com/): links in answers "
        "and signed URLs are built from it, never from a request's Host header",
    )
    parser.add_argument("--no-worker", action="store_true", help="do not train here (run `kestrel worker` instead)")
    _add_data_dir(parser)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _public_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise argparse.ArgumentTypeError(
            f"must be an origin such as https://kestrel.example.com/ (scheme and host, no path), not {text!r}"
        )
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise argparse.ArgumentTypeError(f"must have no user, query or fragment: {text!r}")
    return f"{parts.scheme}://{parts.netloc}/"


def _bootstrap_admin(ports: Ports) -> tuple[str, TokenInfo] | None:
    """On a fresh data folder, an owner and a token, so the first request can be made at once."""
    if has_owners(ports.items):
        return None
    owner = ensure_owner(ports.items, ADMIN_EMAIL, "admin")
    return create_token(ports.items, owner, "created by kestrel serve")


def _print_banner(url: str, settings: Settings, created: tuple[str, TokenInfo] | None) -> None:
    docs = f"{url}recognition/v2/docs/"
    lines = [
        "",
        f"    Kestrel is running at  {url}",
        f"    API reference          {docs}",
        f"    Data folder            {settings.data_dir}"
        if settings.runtime == "local"
        else f"    AWS table / bucket     {settings.table} / {settings.bucket}",
        "",
    ]
    if created is not None:
        token, info = created
        lines += [
            f"    This data folder was empty, so Kestrel created the owner {info.email} and an API",
            "    token for it. Copy the token now; it is not shown again:",
            "",
            f"        {token}",
            "",
            "    Try it:",
            f'        curl -H "Authorization: Token {token}" {url}recognition/v2/task/',
            "",
            "    More tokens: kestrel token create --email you@example.com",
            "",
        ]
    else:
        lines += ["    Tokens: kestrel token list / kestrel token create --email you@example.com", ""]
    lines += ["    Press Ctrl+C to stop.", ""]
    print("\n".join(lines), flush=True)


def _warm_up(gateway: Any) -> None:
    from kestrel.local.execution import GatewayStopping

    try:
        gateway.warm_up()
    except GatewayStopping:
        pass  # stopped (Ctrl+C) before every first worker had started: nothing is broken
    except Exception:
        # Keep serving (the docs and the front page may still work); the log says what is broken.
        logger.exception("a handler failed to load; its requests will answer 500")


def _serve(args: argparse.Namespace) -> int:
    from kestrel.local.gateway import default_workers, make_server  # waitress is only needed here
    from kestrel.local.powertools import quiet_local_powertools

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_local_powertools()
    settings = _settings(args)
    ports = _ports(settings)
    workers = args.workers or default_workers()
    try:
        server = make_server(
            ports, host=args.host, port=args.port, threads=args.threads, workers=workers, public_url=args.public_url
        )
    except OSError as error:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
    # After binding, so a busy port does not leave behind a token nobody saw.
    created = _bootstrap_admin(ports) if settings.runtime == "local" else None
    # Each function's first worker starts while the server already listens: a request that comes
    # first waits for it, as for a Lambda cold start.
    threading.Thread(target=_warm_up, args=(server.gateway,), name="warm-up", daemon=True).start()
    worker = None
    if settings.runtime == "local" and not args.no_worker:
        from kestrel.local.worker import LocalWorker

        worker = LocalWorker(ports)
        worker.start()
    _print_banner(args.public_url or server.url, settings, created)

    def stop(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        server.close()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop)
    server.serve_forever()
    if worker is not None:
        worker.stop()
    print("Kestrel stopped.", flush=True)
    return 0


# --- kestrel worker ---


def _worker(args: argparse.Namespace) -> int:
    from kestrel.local.worker import LocalWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(args)
    if settings.runtime != "local":
        raise CliError("the worker runs training locally; on AWS, SQS, the launcher and SageMaker do its job")
    worker = LocalWorker(_ports(settings))

    def stop(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping after the current step", signal.Signals(signum).name)
        worker.stop(timeout=0)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    print(f"Kestrel training worker on {settings.data_dir}; Ctrl-C stops it.", flush=True)
    worker.run_forever()
    return 0


# --- kestrel token ... ---


def _configure_token_create(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email", required=True, help="the owner's email; the owner is created if new")
    parser.add_argument("--name", default="", help="a label for this token (default: 'default')")
    _add_data_dir(parser)


def _check_metering(ports: Ports) -> None:
    """On AWS every request needs its owner's API key in the stack's usage plan."""
    if ports.settings.runtime == "aws" and ports.usage_keys is None:
        raise CliError(
            f"on AWS each owner needs an API key in the stack's usage plan: set {ENV_USAGE_PLAN_ID} "
            "to the stack output UsagePlanId (docs/operations.md, 'The first API token')"
        )


def _token_create(args: argparse.Namespace) -> int:
    ports = _ports(_settings(args))
    _check_metering(ports)
    owner = ensure_owner(ports.items, args.email)
    token, info = create_token(ports.items, owner, args.name, ports.usage_keys)
    print(f"Created token {info.token_id} ({info.name}) for {info.email}.")
    print("It is shown only this once. Send it as the header 'Authorization: Token <token>':")
    print(token)  # alone on the last line: TOKEN=$(kestrel token create ... | tail -1)
    return 0


def _token_keys(args: argparse.Namespace) -> int:
    ports = _ports(_settings(args))
    _check_metering(ports)
    if ports.usage_keys is None:
        raise CliError(f"usage keys exist on AWS only ({ENV_RUNTIME}=aws); the local gateway meters nothing")
    created, updated = give_usage_keys(ports.items, ports.usage_keys)
    plan = ports.settings.usage_plan_id
    print(f"{created} owner(s) got an API key in usage plan {plan}; {updated} token(s) now name their owner's key.")
    return 0


def _token_list(args: argparse.Namespace) -> int:
    ports = _ports(_settings(args))
    tokens = list_tokens(ports.items)
    if not tokens:
        print("No tokens yet. Create one with: kestrel token create --email you@example.com")
        return 0
    header = ("TOKEN ID", "EMAIL", "NAME", "CREATED")
    rows = [header, *((t.token_id, t.email, t.name, t.created) for t in tokens)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _configure_token_revoke(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("token_id", metavar="TOKEN_ID", help="the id that `kestrel token list` shows")
    _add_data_dir(parser)


def _token_revoke(args: argparse.Namespace) -> int:
    ports = _ports(_settings(args))
    info = revoke_token(ports.items, args.token_id)
    print(f"Revoked token {info.token_id} ({info.name}) of {info.email}.")
    return 0


COMMANDS: list[Command] = [
    Command("serve", "run the API, the console and signed blob URLs on this machine", _configure_serve, _serve),
    Command("worker", "run the local training worker alone (serve starts one itself)", _add_data_dir, _worker),
    Command(
        "token",
        "manage API tokens",
        subcommands=(
            Command("create", "create an API token (and its owner if new)", _configure_token_create, _token_create),
            Command("list", "list tokens (ids, owners, names; never the tokens)", _add_data_dir, _token_list),
            Command("revoke", "revoke a token by id", _configure_token_revoke, _token_revoke),
            Command(
                "keys",
                "AWS: give every owner an API key in the usage plan and name it on their tokens "
                "(once, after upgrading a stack deployed before per-owner limits)",
                _add_data_dir,
                _token_keys,
            ),
        ),
    ),
    Command(
        "table",
        "AWS: the DynamoDB item table",
        subcommands=(
            Command(
                "migrate",
                "copy every item of a table of the layout before the partition design into a new table, "
                "re-keyed (idempotent, resumable)",
                cli_tables.configure_migrate,
                cli_tables.run_migrate,
            ),
        ),
    ),
    # These talk HTTP to any Kestrel API (--endpoint, --token): local or deployed.
    Command("workspaces", "list the workspaces (--workspace chooses one)", add_connection_options, cli_workspaces.run),
    Command("tasks", "list the tasks", add_connection_options, cli_models.run_tasks),
    Command(
        "import",
        "upload a folder tree (one sub-folder per label) into a task; safe to run again",
        cli_import.configure,
        cli_import.run,
    ),
    Command(
        "train",
        "train a new version of a task (--wait: follow it and show its evaluation)",
        cli_models.configure_train,
        cli_models.run_train,
    ),
    Command(
        "models", "list a task's versions, or show one's evaluation", cli_models.configure_models, cli_models.run_models
    ),
    Command(
        "deploy", "make a trained version the one classify uses", cli_models.configure_deploy, cli_models.run_deploy
    ),
    Command(
        "classify",
        "classify image files (in batches of 10) and print table, JSON or CSV",
        cli_classify.configure,
        cli_classify.run,
    ),
    Command(
        "similar",
        "each image file's nearest training images of a task (similarity search)",
        cli_similar.configure,
        cli_similar.run,
    ),
    Command(
        "review",
        "list a task's review queue, most uncertain first (--export FILE: all of it as CSV)",
        cli_review.configure,
        cli_review.run,
    ),
]


def _add_commands(parser: argparse.ArgumentParser, commands: Sequence[Command], depth: int) -> None:
    sub = parser.add_subparsers(dest=f"command_{depth}", metavar="COMMAND")
    for command in commands:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        command.configure(child)
        if command.subcommands:
            _add_commands(child, command.subcommands, depth + 1)
            child.set_defaults(run=None, help_parser=child)
        else:
            child.set_defaults(run=command.run)


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kestrel", description="Kestrel: trainable image recognition, on this machine or on AWS."
    )
    add_connection_options(parser)  # also accepted before the command name
    _add_commands(parser, commands, 0)
    parser.set_defaults(run=None, help_parser=parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status (0 ok, 2 usage or user error). Never raises SystemExit."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or argparse's own usage error (already printed)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    run: Callable[[argparse.Namespace], int] | None = args.run
    if run is None:
        args.help_parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return run(args)
    except _expected_errors() as error:
        # A ClientError's message adds hints (e.g. where the token comes from) to the API's detail.
        detail = None if isinstance(error, HttpClientError) else getattr(error, "detail", None)
        message = detail or str(error) or type(error).__name__
        print(f"kestrel: error: {' '.join(str(message).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
