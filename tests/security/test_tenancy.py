"""Tenancy across every route of the OpenAPI document: a second owner gets 404 on the first
owner's ids and never sees them in lists; cursors and signed image URLs are useless to others."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import pytest
import requests

from kestrel.api.openapi import document
from kestrel.local.worker import LocalWorker
from tests.api.http import Api
from tests.conftest import RunningServer, build_ports, local_settings, running_server
from tests.flow.conftest import make_trainable_task
from tests.photos import photo

pytestmark = pytest.mark.slow  # the module trains one model (model ids, model download)

PREFIX = "/recognition/v2/"
WORKSPACES = "account/v2/workspace/"


@dataclass
class World:
    server: RunningServer
    alice: Api
    bob: Api
    ids: dict[str, str]  # alice's ids by path parameter name
    bob_label: str
    alice_image: dict[str, Any]
    bob_image: dict[str, Any]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    ports = build_ports(local_settings(tmp_path_factory.mktemp("tenancy") / "data"))
    with running_server(ports, "local") as server:
        alice = Api(server.url, server.token)
        bob = Api(server.url, server.new_token("bob@example.com"))
        trainable = make_trainable_task(alice, name="alice secret task")
        alice.post(f"task/{trainable.task['id']}/train/", status=201)
        LocalWorker(ports).run_until_idle()
        model = alice.get("model/", params={"task": trainable.task["id"]})["results"][0]
        assert model["train_status"] == "TRAINED", model
        image = alice.get("training-image/", params={"page_size": 1})["results"][0]
        bob_label = bob.create_label("bob label")["id"]
        bob_image = bob.upload(photo("rocket", 80))
        workspace = alice.ok("POST", f"{server.url}{WORKSPACES}", status=201, json={"name": "alice secret space"})
        ids = {
            "task_id": trainable.task["id"],
            "label_id": trainable.labels[0]["id"],
            "image_id": image["id"],
            "model_id": model["id"],
            "workspace_id": workspace["id"],
        }
        yield World(server, alice, bob, ids, bob_label, image, bob_image)


def _operations() -> list[tuple[str, str]]:
    doc = json.loads(document())
    return sorted(
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    )


def _body(world: World, method: str, path: str) -> dict[str, Any] | None:
    """A request body that names alice's ids wherever the operation takes ids."""
    ids, mine = world.ids, world.bob_label
    bodies: dict[tuple[str, str], dict[str, Any] | None] = {
        ("POST", "classify"): {"task_id": ids["task_id"], "records": [{"_base64": ""}]},
        ("POST", "task/{task_id}/add-label"): {"label_id": mine},
        ("POST", "task/{task_id}/remove-label"): {"label_id": ids["label_id"]},
        ("POST", "training-image/{image_id}/add-label"): {"label_id": mine},
        ("POST", "training-image/{image_id}/remove-label"): {"label_id": ids["label_id"]},
        ("POST", "training-image/update"): {"images": [ids["image_id"]], "mark-test": True},
        ("POST", "task/{task_id}/review/{image_id}"): {"label_ids": [ids["label_id"]]},
        ("POST", "task/{task_id}/similar"): {"records": [{"training_image_id": ids["image_id"]}]},
        ("POST", "training-image"): {"base64": "", "labels": [ids["label_id"]]},
        ("PUT", "task/{task_id}"): {"name": "stolen"},
        ("PATCH", "task/{task_id}"): {"name": "stolen"},
        ("PUT", "label/{label_id}"): {"name": "stolen"},
        ("PATCH", "label/{label_id}"): {"name": "stolen"},
        ("PUT", "training-image/{image_id}"): {"meta_data": {"stolen": True}},
        ("PATCH", "training-image/{image_id}"): {"meta_data": {"stolen": True}},
        ("PUT", "/account/v2/workspace/{workspace_id}"): {"name": "stolen"},
        ("PATCH", "/account/v2/workspace/{workspace_id}"): {"name": "stolen"},
    }
    return bodies.get((method, path.removeprefix(PREFIX)))


# Operations that take no id of anyone (creating one's own items): nothing of alice's to reach.
NO_FOREIGN_ID = {
    ("POST", "task"),
    ("POST", "label"),
    ("POST", "training-image/upload-url"),
    ("POST", "/account/v2/workspace"),
}
# Listings: checked by filtering with alice's ids (404) and by reading bob's own view (no leak).
LISTINGS = {"GET": {"task": None, "label": "task", "training-image": "labels", "model": "task"}}


def test_every_route_answers_404_on_another_owners_ids(world: World) -> None:
    photo_b64 = base64.b64encode(photo("chelsea", 90)).decode()
    checked = []
    for method, path in _operations():
        short = path.removeprefix(PREFIX)
        if (method, short) in NO_FOREIGN_ID or (method, short) == ("GET", "/account/v2/workspace"):
            continue  # nothing of alice's to name (bob's own workspace list is checked below)
        if method == "GET" and short in LISTINGS["GET"]:
            param = LISTINGS["GET"][short]
            if param is None:
                continue  # task/ takes no id filter; its listing is checked below
            value = world.ids["label_id"] if param == "labels" else world.ids["task_id"]
            response = world.bob.call("GET", short, params={param: value})
        else:
            body = _body(world, method, path)
            if body is not None and "records" in body:
                body["records"] = [{"_base64": photo_b64}]
            if body is not None and "base64" in body:
                body["base64"] = photo_b64
            target = short.format(**world.ids)
            if not path.startswith(PREFIX):  # account/v2/...: not under the recognition API
                target = world.server.url + target.lstrip("/")
            response = world.bob.call(method, target, json=body)
        assert response.status_code == 404, f"{method} {short}: {response.status_code} {response.text[:300]}"
        assert "detail" in response.json()
        assert "alice" not in response.text.lower(), f"{method} {short} leaks: {response.text[:300]}"
        checked.append((method, short))
    # bob's own workspaces: never alice's (the listing takes no id to filter with).
    listed = world.bob.ok("GET", f"{world.server.url}{WORKSPACES}")
    assert world.ids["workspace_id"] not in {workspace["id"] for workspace in listed}
    skipped = {("GET", "task"), ("GET", "/account/v2/workspace")} | NO_FOREIGN_ID
    assert {(m, p.removeprefix(PREFIX)) for m, p in _operations()} == set(checked) | skipped

    # bob's own listings never show alice's items.
    for listing in ("task/", "label/", "training-image/", "model/"):
        seen = world.bob.get(listing, params={"page_size": 1000})
        text = json.dumps(seen)
        assert not any(value in text for value in world.ids.values()), f"{listing} leaks alice's ids"
        assert "alice" not in text.lower()
    # And alice's data is untouched by all of that.
    assert world.alice.get(f"task/{world.ids['task_id']}/")["name"] == "alice secret task"
    assert world.alice.get(f"training-image/{world.ids['image_id']}/")["meta_data"] == {}
    assert world.alice.call("GET", f"model/{world.ids['model_id']}/download/").status_code == 200


def test_a_cursor_from_one_owner_is_useless_to_another(world: World) -> None:
    for listing in ("task/", "label/", "training-image/", "model/"):
        page = world.alice.get(listing, params={"page_size": 1})
        if page["next"] is None:
            continue
        stolen = world.bob.call("GET", page["next"])
        assert stolen.status_code == 400, f"{listing}: {stolen.status_code} {stolen.text[:300]}"
        assert "cursor" in stolen.json()["detail"]
        assert not any(value in stolen.text for value in world.ids.values()), stolen.text
        assert world.alice.call("GET", page["next"]).status_code == 200


def _split(url: str) -> tuple[str, str, dict[str, str]]:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    return f"{parts.scheme}://{parts.netloc}", parts.path, query


def test_signed_image_urls_work_for_the_holder_and_refuse_tampering(world: World) -> None:
    alice_url = world.alice_image["img_path"]
    held = requests.get(alice_url, timeout=30)  # no token: the signature is the credential
    assert held.status_code == 200 and held.content[:2] == b"\xff\xd8", held.status_code
    origin, path, query = _split(alice_url)
    _, bob_path, _ = _split(world.bob_image["img_path"])
    assert bob_path != path

    def sig_flip(sig: str) -> str:
        return ("0" if sig[0] != "0" else "1") + sig[1:]

    tampered = {
        "other key": origin + bob_path + "?" + urlencode(query),
        "changed signature": origin + path + "?" + urlencode({**query, "sig": sig_flip(query["sig"])}),
        "changed expiry": origin + path + "?" + urlencode({**query, "expires": str(int(query["expires"]) + 3600)}),
        "no signature": origin + path + "?" + urlencode({"expires": query["expires"]}),
        "traversal": origin + path.rsplit("/", 1)[0] + "/" + quote("../../secret.key") + "?" + urlencode(query),
    }
    for name, url in tampered.items():
        response = requests.get(url, timeout=30)
        allowed = (403, 404) if name == "traversal" else (403,)
        assert response.status_code in allowed, f"{name}: {response.status_code} {response.text[:200]}"
        assert b"\xff\xd8" not in response.content[:2]
    assert requests.get(alice_url, timeout=30).status_code == 200


def test_signed_urls_expire(world: World) -> None:
    _, path, _ = _split(world.alice_image["img_path"])
    key = path.split("/blobs/", 1)[1]
    url = world.server.ports.blobs.download_url(unquote(key), 1, world.server.url)
    assert requests.get(url, timeout=30).status_code == 200
    time.sleep(2.1)
    expired = requests.get(url, timeout=30)
    assert expired.status_code == 403 and "expired" in expired.json()["detail"]
