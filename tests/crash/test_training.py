"""SIGKILL the local server while it trains, once or several times in a row; after the last restart the
version ends Trained (or Failed with the reason, once it was interrupted ``max_attempts`` times),
never stuck Waiting or Training; the train jobs are final, no training process outlives its server,
and the SQLite file is intact.

The short profile kills one training once. The soak trains version after version of the same task
and varies the plan: one kill mid-training, two kills in a row (past the attempt limit), or one kill
at a random moment after the request (while it waits, launches, trains or finishes)."""

from __future__ import annotations

import base64
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api.http import Api
from tests.crash.checks import (
    integrity_problems,
    stored_problems,
    task_status_problems,
    train_state,
    unfinished_versions,
    wait_until_finished,
)
from tests.crash.photos import PhotoMaker
from tests.crash.server import (
    Figures,
    Server,
    create_token,
    training_processes,
    wait_for_no_training_process,
    wait_for_training_process,
)
from tests.flow.conftest import make_trainable_task
from tests.photos import photo
from tests.soak import examples

pytestmark = pytest.mark.slow

MAX_ATTEMPTS = 2  # LocalWorker's default: a job interrupted this many times is Failed
PLANS = ("once", "twice", "random")  # the short profile runs the first
FINAL = {"TRAINED", "FAILED"}
FINAL_JOBS = {"Completed", "Failed"}


def _wait_for(api: Api, model_id: str, states: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    model: dict[str, Any] = {}
    while time.monotonic() < deadline:
        model = api.get(f"model/{model_id}")
        if model["train_status"] in states:
            return model
        time.sleep(0.05)
    raise AssertionError(f"model stayed {model.get('train_status')!r}, wanted one of {states}: {model}")


def _jobs_settled(database: Path, timeout: float = 10.0) -> list[tuple[str, str, int]]:
    """The train jobs once none is InProgress (the worker marks its job just after the model)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = train_state(database)[0]
        if all(status != "InProgress" for _, status, _ in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.05)


class Crasher:
    """Kills the server, checks what it left on disk, starts it again."""

    def __init__(self, server: Server, problems: list[str]) -> None:
        self.server, self.problems = server, problems

    def kill_and_restart(self) -> None:
        self.server.kill()
        orphans = wait_for_no_training_process(self.server.data_dir)
        if orphans:
            self.problems.append(f"training processes {orphans} outlived the killed server")
        self.problems += integrity_problems(self.server.database) + stored_problems(self.server.data_dir)
        self.server.start()

    def kill_mid_training(self, api: Api, model_id: str, rng: random.Random) -> bool:
        """Kill once the job's training process runs; True if it still ran at the kill."""
        _wait_for(api, model_id, {"IN_TRAINING"}, timeout=120)
        wait_for_training_process(self.server.data_dir, timeout=120)
        time.sleep(rng.uniform(0.0, 0.5))
        running = bool(training_processes(self.server.data_dir))
        self.kill_and_restart()
        return running


def _classify_problems(api: Api, task_id: str, version: int) -> list[str]:
    """A Trained version can be loaded and answers."""
    body = {"task_id": task_id, "version": version, "records": [{"_base64": base64.b64encode(photo()).decode()}]}
    response = api.call("POST", "classify/", json=body)
    if response.status_code != 200 or response.json()["records"][0]["_status"]["code"] != 200:
        return [f"version {version} is Trained but does not classify: {response.status_code} {response.text[:300]}"]
    return []


def _outcome_problems(final: dict[str, Any], job: tuple[str, int], kills: int, interrupted: int) -> list[str]:
    """Trained, unless the job was interrupted ``MAX_ATTEMPTS`` times: then Failed, saying so.

    ``interrupted`` counts the kills that found the training process running. A kill that did not
    (it had just ended) may still have cut the worker short before it reported the job: that
    attempt counts as interrupted too, so each such kill allows one more attempt."""
    status, attempts = job
    possible = range(interrupted + 1, kills + 2)
    if attempts not in possible:
        return [f"the job ran {attempts} times after {kills} kills, {interrupted} of them mid-training"]
    if final["train_status"] == "FAILED":
        if attempts - 1 < MAX_ATTEMPTS or f"interrupted {attempts - 1} times" not in (final["failure_reason"] or ""):
            return [f"Failed without reaching the attempt limit: {final}"]
        return [] if status == "Failed" else [f"the version is Failed but its job is {status}"]
    if final["train_status"] != "TRAINED" or interrupted >= MAX_ATTEMPTS:
        return [f"wanted {'Failed' if interrupted >= MAX_ATTEMPTS else 'TRAINED'}, got {final}"]
    # Completed; or Failed if a kill cut the report short and the retry found the limit reached.
    return [] if status == "Completed" or (status == "Failed" and kills > interrupted) else [f"the job is {status}"]


def test_sigkill_during_training(server: Server) -> None:
    rounds = examples(1, 9)
    token = create_token(server.data_dir)
    server.start()
    with Figures(server).recorded() as figures:
        api = figures.requests.api(server, token)
        trainable = make_trainable_task(api)
        task_id = trainable.task["id"]
        counts_before = [api.get(f"label/{label['id']}")["images_count"] for label in trainable.labels]
        production = -1
        for round_ in range(rounds):
            found: list[str] = []
            crasher = Crasher(server, found)
            plan, rng = PLANS[round_ % len(PLANS)], random.Random(f"training-{round_}")
            model = api.post(f"task/{task_id}/train/", status=201)
            figures.acknowledged_writes += 1  # the answered train request, followed to its end
            interrupted, kills = 0, 2 if plan == "twice" else 1
            if plan == "random":
                time.sleep(rng.uniform(0.0, 4.0))
                interrupted += bool(training_processes(server.data_dir))
                crasher.kill_and_restart()
            else:
                for _ in range(kills):
                    interrupted += crasher.kill_mid_training(api, model["id"], rng)

            final = _wait_for(api, model["id"], FINAL, timeout=240)
            jobs = {name: (status, attempts) for name, status, attempts in _jobs_settled(server.database)}
            found += _outcome_problems(final, jobs.get(f"kestrel-{model['id']}", ("missing", 0)), kills, interrupted)
            if final["train_status"] == "TRAINED":
                production = final["version"] if production == -1 else production
                found += _classify_problems(api, task_id, final["version"])
            found += [f"job {name} is {status}" for name, (status, _) in jobs.items() if status not in FINAL_JOBS]
            task = api.get(f"task/{task_id}")
            if (task["last_train_status"], task["production_version"]) != (final["train_status"], production):
                found.append(f"the task shows {task['last_train_status']}, production {task['production_version']}")
            if [api.get(f"label/{label['id']}")["images_count"] for label in trainable.labels] != counts_before:
                found.append("the label counts changed")
            found += unfinished_versions(server.database) + task_status_problems(server.database)
            if dead_letters := train_state(server.database)[2]:
                found.append(f"{dead_letters} train requests went to the dead letters")
            if training_processes(server.data_dir):
                found.append("a training process is still running after the version ended")
            figures.failures += [f"round {round_} ({plan}, {interrupted} interrupted): {p}" for p in found]

    assert not figures.failures, "\n".join(figures.failures[:40])
    assert server.kills >= rounds


def test_sigkill_during_train_requests(server: Server) -> None:
    """Kill while clients send train requests back to back: every answered request has its version,
    and every version, answered or not, ends (none is left Waiting with nothing to launch it), and
    the task shows the state of its newest version.

    The task's images carry both its labels, so each request passes the rules and each launch fails
    at once ("no usable images"): versions end in milliseconds, without a training process."""
    rounds = examples(3, 20)
    token = create_token(server.data_dir)
    server.start()
    with Figures(server).recorded() as figures:
        api = figures.requests.api(server, token)
        task_id = api.create_task("never trains")["id"]
        label_ids = [api.create_label(name)["id"] for name in ("both", "each")]
        for label_id in label_ids:
            api.post(f"task/{task_id}/add-label/", {"label_id": label_id})
        photo = PhotoMaker("train-requests", max_side=96)
        for _ in range(20):
            api.upload(photo(), labels=label_ids)
        answered: list[str] = []
        refused: list[str] = []

        def client() -> None:
            client_api = figures.requests.api(server, token)
            while True:
                try:
                    response = client_api.call("POST", f"task/{task_id}/train/")
                except requests.RequestException:
                    return
                if response.status_code == 201:
                    answered.append(response.json()["id"])
                else:
                    refused.append(f"a train request answered {response.status_code}: {response.text[:200]}")

        for round_ in range(rounds):
            checked = len(answered)
            clients = [threading.Thread(target=client) for _ in range(3)]
            for thread in clients:
                thread.start()
            time.sleep(random.Random(f"train-requests-{round_}").uniform(0.1, 1.0))
            server.kill()
            for thread in clients:
                thread.join(timeout=60)
            figures.acknowledged_writes = len(answered)

            found = integrity_problems(server.database) + stored_problems(server.data_dir) + refused
            refused.clear()
            server.start()
            for model_id in answered[checked:]:
                if api.call("GET", f"model/{model_id}").status_code != 200:
                    found.append(f"the answered train request's version {model_id} is gone")
            found += [f"stuck: {version}" for version in wait_until_finished(server.database, timeout=60)]
            found += task_status_problems(server.database)
            figures.failures += [f"round {round_}: {problem}" for problem in found]

    assert not figures.failures, "\n".join(figures.failures[:40])
    assert figures.acknowledged_writes > 0
