"""SIGKILL the local server while several clients upload labelled photos, round after round on the
same data folder. After each kill: the file is sound and every stored image is whole (checked on
disk before the restart); after each restart: every upload that was answered 2xx is there with its
labels and bytes, an upload that got no answer is either absent or whole, and each label's
``images_count`` equals the images listed under it."""

from __future__ import annotations

import base64
import random
import threading
import time
from dataclasses import dataclass, field

import pytest
import requests

from tests.api.http import Api
from tests.crash.checks import (
    all_pages,
    duplicate_of,
    image_problems,
    integrity_problems,
    label_count_problems,
    sha256,
    stored_problems,
)
from tests.crash.photos import PhotoMaker
from tests.crash.server import CountingApi, Figures, Server, create_token
from tests.soak import examples

pytestmark = pytest.mark.slow

CLIENTS = 3
LABELS = 3


@dataclass
class Upload:
    content_hash: str
    labels: set[str]
    data: bytes = b""  # kept only while the upload is unanswered (it is sent again)

    @classmethod
    def of(cls, data: bytes, labels: set[str]) -> Upload:
        return cls(sha256(data), labels, data)

    def answered(self) -> Upload:
        return Upload(self.content_hash, self.labels)


@dataclass
class Ledger:
    """What the clients were told: answered uploads by image id, and the ones never answered."""

    acknowledged: dict[str, Upload] = field(default_factory=dict)
    unanswered: list[Upload] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _upload(api: Api, upload: Upload) -> requests.Response:
    body = {"base64": base64.b64encode(upload.data).decode(), "labels": sorted(upload.labels)}
    return api.call("POST", "training-image/", json=body)


def _client(api: CountingApi, photo: PhotoMaker, label_ids: list[str], rng: random.Random, ledger: Ledger) -> None:
    """Upload until the server stops answering."""
    while True:
        upload = Upload.of(photo(), set(rng.sample(label_ids, rng.randint(0, 2))))
        try:
            response = _upload(api, upload)
        except requests.RequestException:
            with ledger.lock:
                ledger.unanswered.append(upload)
            return
        with ledger.lock:
            if response.status_code == 201:
                ledger.acknowledged[response.json()["id"]] = upload.answered()
            else:
                ledger.failures.append(f"an upload answered {response.status_code}: {response.text[:200]}")


def _settle_unanswered(api: Api, ledger: Ledger) -> list[str]:
    """Send each unanswered upload again: the duplicate answer names the image if it was stored,
    which must then be whole; otherwise it is stored now. Either way it joins the ledger."""
    problems = []
    for upload in ledger.unanswered:
        response = _upload(api, upload)
        if response.status_code == 201:
            ledger.acknowledged[response.json()["id"]] = upload.answered()
            continue
        image_id = duplicate_of(response.json().get("detail", "")) if response.status_code == 409 else None
        if image_id is None:
            problems.append(f"an unanswered upload, sent again, answered {response.status_code}: {response.text[:200]}")
            continue
        found = image_problems(api, image_id, upload.content_hash, upload.labels)
        problems += [f"an unanswered upload was stored half-written: {problem}" for problem in found]
        ledger.acknowledged[image_id] = upload.answered()
    ledger.unanswered.clear()
    return problems


def _listing_problems(api: Api, ledger: Ledger, label_ids: list[str]) -> list[str]:
    """Exactly the ledger's images are listed, each with its labels; the counts agree with it."""
    problems: list[str] = []
    listed = all_pages(api, "training-image/?page_size=1000", problems)
    have = {image["id"]: {label["id"] for label in image["labels"]} for image in listed}
    for image_id in ledger.acknowledged.keys() - have.keys():
        problems.append(f"the acknowledged image {image_id} is not listed")
    for image_id in have.keys() - ledger.acknowledged.keys():
        problems.append(f"image {image_id} is listed but nobody uploaded it")
    for image_id in have.keys() & ledger.acknowledged.keys():
        if have[image_id] != ledger.acknowledged[image_id].labels:
            problems.append(f"image {image_id} is listed with labels {sorted(have[image_id])}")
    problems += label_count_problems(api, listed)
    for label_id in label_ids:
        expected = sum(1 for upload in ledger.acknowledged.values() if label_id in upload.labels)
        count = api.get(f"label/{label_id}")["images_count"]
        if count != expected:
            problems.append(f"label {label_id} counts {count} images; {expected} were uploaded with it")
    return problems


def test_sigkill_during_uploads(server: Server) -> None:
    rounds = examples(3, 30)
    token = create_token(server.data_dir)
    server.start()
    with Figures(server).recorded() as figures:
        api = figures.requests.api(server, token)
        label_ids = [api.create_label(f"crash-{index}")["id"] for index in range(LABELS)]
        photo = PhotoMaker("uploads")
        ledger = Ledger()
        for round_ in range(rounds):
            rng = random.Random(f"uploads-{round_}")
            answered_before = set(ledger.acknowledged)
            clients = []
            for n in range(CLIENTS):
                client_api = figures.requests.api(server, token)
                args = (client_api, photo, label_ids, random.Random(f"{round_}-{n}"), ledger)
                clients.append(threading.Thread(target=_client, args=args))
            for client in clients:
                client.start()
            time.sleep(rng.uniform(0.2, 1.5))
            server.kill()
            for client in clients:
                client.join(timeout=60)
            new = {image_id: ledger.acknowledged[image_id] for image_id in ledger.acknowledged.keys() - answered_before}
            figures.acknowledged_writes += len(new)

            # What the killed server left on disk, before anything reads or repairs it.
            found = integrity_problems(server.database) + stored_problems(server.data_dir)
            server.start()
            for image_id, upload in new.items():
                found += image_problems(api, image_id, upload.content_hash, upload.labels)
            found += _settle_unanswered(api, ledger) + _listing_problems(api, ledger, label_ids) + ledger.failures
            ledger.failures.clear()
            figures.failures += [f"round {round_}: {problem}" for problem in found]

    assert not figures.failures, "\n".join(figures.failures[:40])
    assert figures.acknowledged_writes > 0 and server.kills == rounds
