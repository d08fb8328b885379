"""``--workspace`` (by id or name) on the HTTP commands, and ``kestrel workspaces``."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli


def _workspace(cli: Cli, name: str) -> dict[str, str]:
    response = cli.server.request("POST", "account/v2/workspace/", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _task(cli: Cli, name: str, workspace: str | None = None) -> str:
    body = {"name": name, **({"workspace": workspace} if workspace else {})}
    response = cli.server.request("POST", "recognition/v2/task/", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_tasks_lists_only_the_chosen_workspace(cli: Cli) -> None:
    shelves = _workspace(cli, "Shelves")
    _task(cli, "Default task")
    shelf_task = _task(cli, "Shelf task", shelves["id"])

    code, out, _ = cli("tasks")
    assert code == 0 and "Default task" in out and "Shelf task" not in out
    for choice in ("Shelves", "shelves", shelves["id"]):
        code, out, _ = cli("tasks", "--workspace", choice)
        assert code == 0 and "Shelf task" in out and shelf_task in out and "Default task" not in out, choice


def test_workspaces_marks_the_one_in_use(cli: Cli) -> None:
    shelves = _workspace(cli, "Shelves")
    code, out, _ = cli("workspaces")
    lines = out.splitlines()
    assert code == 0
    assert any(line.startswith("* Default") and "default" in line for line in lines)
    assert any(line.startswith("  Shelves") and shelves["id"] in line for line in lines)
    code, out, _ = cli("workspaces", "--workspace", "Shelves")
    assert any(line.startswith("* Shelves") for line in out.splitlines())


def test_an_unknown_workspace_is_an_error_that_says_how_to_list_them(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KESTREL_WORKSPACE", "Nowhere")
    code, out, err = cli("tasks")
    assert code != 0 and out == ""
    assert "no workspace named or numbered 'Nowhere'" in err and "kestrel workspaces" in err
