"""SIGKILL the local server while clients change labels, round after round on the same data folder:
labels put on and taken off images (one at a time and in batches), labels created, renamed and
deleted (some on more images than one delete transaction takes), labels attached to and detached
from tasks. After each kill the file is sound and its items agree with each other (checked on disk
before the restart); after each restart every answered change is visible, a change that got no
answer is either done or not done, and every label's counts agree with the listings.

Each client works on its own images, its own task and its own labels (the shared labels it only
puts on its own images), so what it was told is the whole truth about them."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.crash.checks import all_pages, integrity_problems, label_count_problems, stored_problems
from tests.crash.photos import PhotoMaker
from tests.crash.server import CountingApi, Figures, RequestCounter, Server, create_token
from tests.soak import examples

pytestmark = pytest.mark.slow

CLIENTS = 3
SHARED_LABELS = 3
IMAGES_PER_CLIENT = 50  # more than one delete transaction takes (45), so a delete can stop half-way


class Stopped(Exception):
    """The server stopped answering."""


@dataclass
class Label:
    name: str
    exists: bool | None = True  # None: a delete got no answer
    new_name: str | None = None  # a rename that got no answer


class Client:
    """One client and what it was told: which labels exist, which of its images and its task have
    which labels (None where a change got no answer)."""

    def __init__(self, index: int, api: CountingApi, images: list[str], task_id: str, shared: list[str]) -> None:
        self.index, self.api, self.images, self.task_id, self.shared = index, api, images, task_id, shared
        self.labels: dict[str, Label] = {}  # its own labels
        self.on_image: dict[tuple[str, str], bool | None] = {}  # (image, label) -> carried
        self.on_task: dict[str, bool | None] = {}  # label -> attached to its task
        self.unanswered_creates: list[str] = []
        self.serial = 0
        self.acknowledged = 0
        self.failures: list[str] = []

    def live_labels(self) -> list[str]:
        return self.shared + [label_id for label_id, label in self.labels.items() if label.exists is True]

    # -- changes ----------------------------------------------------------------------------

    def run(self, rng: random.Random) -> None:
        changes: list[tuple[Callable[[random.Random], None], int]] = [
            (self.toggle, 45),
            (self.batch, 10),
            (self.attach, 20),
            (self.create, 10),
            (self.delete, 8),
            (self.rename, 7),
        ]
        actions, weights = zip(*changes, strict=True)
        try:
            while True:
                rng.choices(actions, weights)[0](rng)
        except Stopped:
            return
        except (KeyError, ValueError, TypeError, IndexError) as error:  # a bug here must fail the test
            self.failures.append(f"client {self.index} broke: {error!r}")

    def send(self, method: str, path: str, body: Any, status: int) -> requests.Response | None:
        try:
            response = self.api.call(method, path, json=body)
        except requests.RequestException:
            raise Stopped from None
        if response.status_code != status:
            self.failures.append(f"{method} {path} {body} answered {response.status_code}: {response.text[:200]}")
            return None
        self.acknowledged += 1
        return response

    def toggle(self, rng: random.Random) -> None:
        pair = (rng.choice(self.images), rng.choice(self.live_labels()))
        carried = self.on_image.get(pair, False)
        if carried is None:
            return
        self.on_image[pair] = None
        action = "remove-label" if carried else "add-label"
        if self.send("POST", f"training-image/{pair[0]}/{action}/", {"label_id": pair[1]}, 200):
            self.on_image[pair] = not carried

    def batch(self, rng: random.Random) -> None:
        label_id = rng.choice(self.live_labels())
        chosen = rng.sample(self.images, rng.randint(1, len(self.images)))
        remove = rng.random() < 0.3
        for image_id in chosen:
            self.on_image[(image_id, label_id)] = None
        body = {"images": chosen, "labels-remove" if remove else "labels-add": [label_id]}
        if self.send("POST", "training-image/update", body, 200):
            for image_id in chosen:
                self.on_image[(image_id, label_id)] = not remove

    def attach(self, rng: random.Random) -> None:
        label_id = rng.choice(self.live_labels())
        attached = self.on_task.get(label_id, False)
        if attached is None:
            return
        self.on_task[label_id] = None
        action = "remove-label" if attached else "add-label"
        if self.send("POST", f"task/{self.task_id}/{action}/", {"label_id": label_id}, 200):
            self.on_task[label_id] = not attached

    def create(self, rng: random.Random) -> None:
        name = f"client{self.index}-{self.serial}"
        self.serial += 1
        self.unanswered_creates.append(name)
        response = self.send("POST", "label/", {"name": name, "type": "category"}, 201)
        if response:
            self.unanswered_creates.remove(name)
            self.labels[response.json()["id"]] = Label(name)

    def delete(self, rng: random.Random) -> None:
        own = [label_id for label_id, label in self.labels.items() if label.exists is True]
        if not own:
            return self.create(rng)
        label_id = rng.choice(own)
        self.labels[label_id].exists = None
        self._set_pairs(label_id, None)
        if self.send("DELETE", f"label/{label_id}/", None, 204):
            self.labels[label_id].exists = False
            self._set_pairs(label_id, False)
        return None

    def rename(self, rng: random.Random) -> None:
        own = [label_id for label_id, label in self.labels.items() if label.exists is True]
        if not own:
            return self.create(rng)
        label = self.labels[label_id := rng.choice(own)]
        label.new_name = f"{label.name.split('/')[0]}/{self.serial}"
        self.serial += 1
        if self.send("PATCH", f"label/{label_id}/", {"name": label.new_name}, 200):
            label.name, label.new_name = label.new_name, None
        return None

    def _set_pairs(self, label_id: str, value: bool | None) -> None:
        for image_id in self.images:
            self.on_image[(image_id, label_id)] = value
        self.on_task[label_id] = value

    # -- after a restart --------------------------------------------------------------------

    def settle(
        self,
        labels: dict[str, dict[str, Any]],
        images: dict[str, set[str]],
        tasks: dict[str, set[str]],
    ) -> list[str]:
        """Compare what the client was told with what the restarted server shows; where the
        client was told nothing, take what the server shows as the truth from now on."""
        problems: list[str] = []
        for name in self.unanswered_creates:
            found = [label_id for label_id, label in labels.items() if label["name"] == name]
            if len(found) > 1:
                problems.append(f"one unanswered create made {len(found)} labels named {name}")
            for label_id in found:
                self.labels[label_id] = Label(name)
        self.unanswered_creates.clear()
        for label_id, label in list(self.labels.items()):
            listed = labels.get(label_id)
            if label.exists is True and listed is None:
                problems.append(f"the label {label_id} ({label.name}) is gone, but its delete was never asked")
            elif label.exists is False and listed is not None:
                problems.append(f"the label {label_id} is back after its delete was answered")
            if listed is None:
                del self.labels[label_id]
                continue
            if listed["name"] not in (label.name, label.new_name):
                problems.append(f"label {label_id} is named {listed['name']!r}, expected {label.name!r}")
            label.exists, label.name, label.new_name = True, listed["name"], None
        live = set(self.live_labels())
        for shared in self.shared:
            if shared not in labels:
                problems.append(f"the shared label {shared} is gone")
        self.on_image = {pair: value for pair, value in self.on_image.items() if pair[1] in live}
        self.on_task = {label_id: value for label_id, value in self.on_task.items() if label_id in live}
        for image_id in self.images:
            if image_id not in images:
                problems.append(f"image {image_id} is gone")
                continue
            problems += [f"image {image_id} has label {other}, not its own" for other in images[image_id] - live]
            for label_id in live:
                problems += _compare(self.on_image, (image_id, label_id), label_id in images[image_id])
        have = tasks.get(self.task_id, set())
        problems += [f"task {self.task_id} has label {other}, not its own" for other in have - live]
        for label_id in live:
            problems += _compare(self.on_task, label_id, label_id in have)
        return problems


def _compare(told: dict[Any, bool | None], key: Any, actual: bool) -> list[str]:
    expected = told.get(key, False)
    told[key] = actual
    if expected is None or expected == actual:
        return []
    return [f"{key}: {'there' if actual else 'missing'}, but the client was told otherwise"]


def _setup(api: CountingApi, requests_sent: RequestCounter, server: Server, token: str) -> list[Client]:
    shared = [api.create_label(f"shared-{index}")["id"] for index in range(SHARED_LABELS)]
    photo = PhotoMaker("labels", max_side=128)
    rng = random.Random("labels-setup")
    clients = []
    for index in range(CLIENTS):
        task_id = api.create_task(f"client {index}")["id"]
        client = Client(index, requests_sent.api(server, token), [], task_id, shared)
        for _ in range(IMAGES_PER_CLIENT):
            labels = rng.sample(shared, rng.randint(0, 2))
            image_id = api.upload(photo(), labels=labels)["id"]
            client.images.append(image_id)
            for label_id in shared:
                client.on_image[(image_id, label_id)] = label_id in labels
        clients.append(client)
    return clients


def test_sigkill_during_label_changes(server: Server) -> None:
    rounds = examples(3, 30)
    token = create_token(server.data_dir)
    server.start()
    with Figures(server).recorded() as figures:
        api = figures.requests.api(server, token)
        clients = _setup(api, figures.requests, server, token)
        for round_ in range(rounds):
            threads = [
                threading.Thread(target=client.run, args=(random.Random(f"labels-{round_}-{client.index}"),))
                for client in clients
            ]
            for thread in threads:
                thread.start()
            time.sleep(random.Random(f"labels-{round_}").uniform(0.2, 1.5))
            server.kill()
            for thread in threads:
                thread.join(timeout=60)
            figures.acknowledged_writes = sum(client.acknowledged for client in clients)

            # What the killed server left on disk, before anything reads or repairs it.
            found = integrity_problems(server.database) + stored_problems(server.data_dir)
            server.start()
            labels = {label["id"]: label for label in all_pages(api, "label/?page_size=1000", found)}
            listed = all_pages(api, "training-image/?page_size=1000", found)
            images = {image["id"]: {label["id"] for label in image["labels"]} for image in listed}
            tasks = {task["id"]: {label["id"] for label in task["labels"]} for task in all_pages(api, "task/", found)}
            for client in clients:
                found += client.settle(labels, images, tasks) + client.failures
                client.failures.clear()
            found += label_count_problems(api, listed)
            figures.failures += [f"round {round_}: {problem}" for problem in found]

    assert not figures.failures, "\n".join(figures.failures[:40])
    assert figures.acknowledged_writes > 0 and server.kills == rounds
