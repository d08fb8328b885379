"""SIGKILL the local server in the middle of ``DELETE label/{id}/wipe`` (a label on more images
than one wipe step takes), round after round: after each kill the data folder is sound (every
image whole or gone, counters and duplicate markers agreeing), the label is still there with
fewer images or gone, and the images without it are untouched; asking again finishes the job."""

from __future__ import annotations

import base64
import sqlite3
import threading
import time

import pytest
import requests

from tests.api.http import Api
from tests.crash.checks import stored_problems
from tests.crash.photos import PhotoMaker
from tests.crash.server import Server, create_token

pytestmark = pytest.mark.slow

DOOMED_IMAGES = 120  # several wipe steps (a step takes at most 30 images)
ROUNDS = 3


def _images_left(database: str) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
        return int(db.execute("SELECT count(*) FROM items WHERE sk LIKE 'I#%'").fetchone()[0])


def _kill_once_images_go(server: Server, before: int, timeout: float = 60.0) -> bool:
    """Kill the server as soon as the wipe has deleted some images (True), or give up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _images_left(str(server.database)) < before:
            server.kill()
            return True
        time.sleep(0.002)
    return False


def _wipe(api: Api, label_id: str, answers: list[int]) -> None:
    try:
        answers.append(api.call("DELETE", f"label/{label_id}/wipe/").status_code)
    except requests.RequestException:
        answers.append(0)  # no answer: the server was killed


def test_a_wipe_killed_midway_leaves_whole_images_and_finishes_when_asked_again(server: Server) -> None:
    server.start()
    api = Api(server.url, create_token(server.data_dir))
    photos = PhotoMaker("wipe", max_side=96)
    kept = api.create_label("kept")
    unlabelled = [api.upload(photos())["id"] for _ in range(3)]
    kept_only = [api.upload(photos(), labels=[kept["id"]])["id"] for _ in range(3)]
    for round_index in range(ROUNDS):
        doomed = api.create_label(f"doomed-{round_index}")
        for index in range(DOOMED_IMAGES):
            labels = [doomed["id"], kept["id"]] if index % 4 == 0 else [doomed["id"]]
            body = {"base64": base64.b64encode(photos()).decode(), "labels": labels}
            api.ok("POST", "training-image/", 201, json=body)
        before = _images_left(str(server.database))

        answers: list[int] = []
        thread = threading.Thread(target=_wipe, args=(api, doomed["id"], answers))
        thread.start()
        killed = _kill_once_images_go(server, before)
        thread.join(timeout=120)
        assert killed, f"the wipe never started deleting:\n{server.log_tail()}"
        assert answers == [0], "the server answered although it was killed mid-wipe"

        # On disk, before anything runs again: every image whole or gone, everything agreeing.
        assert stored_problems(server.data_dir) == []
        server.start()
        label = api.call("GET", f"label/{doomed['id']}/")
        if label.status_code == 200:  # killed midway: some images gone, the label still there
            assert 0 < label.json()["images_count"] < DOOMED_IMAGES
            api.ok("DELETE", f"label/{doomed['id']}/wipe", 204)  # asked again: finishes the job
        else:  # the kill landed after the last step (only the answer was lost): nothing is left
            assert label.status_code == 404, label.text
        assert api.call("GET", f"label/{doomed['id']}/").status_code == 404
        listed = api.get("training-image/", params={"page_size": 1000})
        assert sorted(image["id"] for image in listed["results"]) == sorted(unlabelled + kept_only)
        assert api.get(f"label/{kept['id']}/")["images_count"] == len(kept_only)
        assert stored_problems(server.data_dir) == []
