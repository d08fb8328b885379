"""Training and classifying in a workspace other than the default one, on both runtimes: the train
request, the manifest, the job's completion and the deploy all find the task in its workspace,
and the trained model answers there only."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import requests

from kestrel.local.worker import LocalWorker
from tests.api.http import Api
from tests.conftest import RunningServer
from tests.flow.artefacts import TrainedArtefact, completed_event, finish_mails, trained_once
from tests.flow.conftest import make_trainable_task
from tests.flow.test_aws_flow import deliver_artefact, run_finisher, train_and_launch
from tests.photos import photo


class WorkspaceApi(Api):
    """``Api`` that addresses one workspace in every call (as the ximilar client does)."""

    def __init__(self, base_url: str, token: str | None, workspace: str) -> None:
        super().__init__(base_url, token)
        self.workspace = workspace

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        params = dict(kwargs.pop("params", None) or {})
        if "workspace=" not in path:
            params["workspace"] = self.workspace
        return super().call(method, path, params=params, **kwargs)


def _workspace_api(server: RunningServer, name: str) -> WorkspaceApi:
    created = server.request("POST", "account/v2/workspace/", json={"name": name})
    assert created.status_code == 201, created.text
    return WorkspaceApi(server.url, server.token, created.json()["id"])


def _classify_cat_and_coffee(api: Api, task_id: str) -> list[str]:
    records = [{"_base64": base64.b64encode(photo(name, 300)).decode()} for name in ("chelsea", "coffee")]
    answer = api.post("classify/", {"task_id": task_id, "records": records})
    return [record["best_label"]["name"] for record in answer["records"]]


def _only_in_its_workspace(server: RunningServer, api: WorkspaceApi, task_id: str, model_id: str) -> None:
    default = Api(server.url, server.token)
    assert default.call("GET", f"model/{model_id}").status_code == 404
    assert default.get("model/")["count"] == 0
    assert default.call("POST", "classify/", json={"task_id": task_id, "records": [{"_url": "x"}]}).status_code == 404
    assert [model["id"] for model in api.get("model/")["results"]] == [model_id]


@pytest.mark.slow
def test_a_task_in_a_workspace_trains_and_classifies_there_locally(local_server: RunningServer) -> None:
    api = _workspace_api(local_server, "Kitchen")
    trainable = make_trainable_task(api)
    model = api.post(f"task/{trainable.task['id']}/train/", status=201)
    LocalWorker(local_server.ports).run_until_idle()

    task = api.get(f"task/{trainable.task['id']}")
    assert task["production_version"] == 1 and task["workspace"] == api.workspace
    assert _classify_cat_and_coffee(api, trainable.task["id"]) == ["cat", "coffee"]
    _only_in_its_workspace(local_server, api, trainable.task["id"], model["id"])


@pytest.fixture(scope="module")
def artefact(tmp_path_factory: pytest.TempPathFactory) -> TrainedArtefact:
    return trained_once(tmp_path_factory)


@pytest.mark.aws
def test_a_task_in_a_workspace_trains_and_classifies_there_on_aws(
    artefact: TrainedArtefact, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.conftest import aws_ports, running_server

    with aws_ports(monkeypatch, tmp_path / "data") as ports, running_server(ports, "aws") as server:
        api = _workspace_api(server, "Kitchen")
        launched = train_and_launch(server, make_trainable_task(api))
        assert launched.message["Body"].count(api.workspace) == 1  # the SQS message names the workspace
        deliver_artefact(server, launched.model["id"], artefact.archive_for(launched.model, launched.trainable.labels))
        run_finisher(completed_event(server, launched.model["id"]))

        assert api.get(f"task/{launched.task_id}")["production_version"] == 1
        assert len(finish_mails(server)) == 1
        assert _classify_cat_and_coffee(api, launched.task_id) == ["cat", "coffee"]
        _only_in_its_workspace(server, api, launched.task_id, launched.model["id"])
