"""The unmodified ximilar-client against Kestrel, on the local runtime and on the AWS adapters
under moto, with a way to carry a requested training through to its end on each runtime:

* local: the local worker runs the real training job in a subprocess;
* aws: the train request is read from SQS (moto) and handed to the launcher Lambda, the job's
  model.tar.gz (from one real training per test process) is put where SageMaker leaves it, and
  the finisher Lambda gets SageMaker's completion event."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ximilar.client import RecognitionClient

from tests.conftest import RunningServer, aws_ports, build_ports, local_settings, running_server

Finish = Callable[[str], None]  # (model id) -> the version is TRAINED (or FAILED)


@dataclass
class CompatServer:
    server: RunningServer
    finish_training: Finish

    def client(self) -> RecognitionClient:
        # resource_name=None: the client must not post the token to Ximilar's own authorisation
        # endpoint (it does so for any endpoint URL without "localhost" in it).
        return RecognitionClient(self.server.token, endpoint=self.server.url, resource_name=None)


def _local_finish(server: RunningServer) -> Finish:
    from kestrel.local.worker import LocalWorker

    def finish(_: str) -> None:
        LocalWorker(server.ports).run_until_idle()

    return finish


def _aws_finish(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Finish:
    from tests.flow.artefacts import completed_event, trained_once
    from tests.flow.test_aws_flow import deliver_artefact, receive_all, run_finisher, run_launcher, sqs_record

    def finish(model_id: str) -> None:
        artefact = trained_once(tmp_path_factory)
        for message in receive_all(server):
            assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}
        model = server.request("GET", f"recognition/v2/model/{model_id}/").json()
        task = server.request("GET", f"recognition/v2/task/{model['task']}/").json()
        deliver_artefact(server, model_id, artefact.archive_for(model, task["labels"]))
        run_finisher(completed_event(server, model_id))

    return finish


@pytest.fixture(params=["local", pytest.param("aws", marks=pytest.mark.aws)])
def compat(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CompatServer]:
    if request.param == "local":
        with running_server(build_ports(local_settings(tmp_path / "data")), "local") as server:
            yield CompatServer(server, _local_finish(server))
        return
    # The real training behind the artefact runs on the local runtime: do it before moto starts.
    from tests.flow.artefacts import trained_once

    trained_once(tmp_path_factory)
    with aws_ports(monkeypatch, tmp_path / "data") as ports, running_server(ports, "aws") as server:
        yield CompatServer(server, _aws_finish(server, tmp_path_factory))


def in_background(work: Callable[[], None]) -> tuple[threading.Thread, list[Exception]]:
    """Run ``work`` in a thread; its exception (if any) lands in the returned list."""
    errors: list[Exception] = []

    def run() -> None:
        try:
            work()
        except Exception as error:  # noqa: BLE001 - the test asserts the list is empty
            errors.append(error)

    thread = threading.Thread(target=run, name="finish-training", daemon=True)
    thread.start()
    return thread, errors
