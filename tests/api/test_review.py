"""task/{id}/review/ on both runtimes: images stored by classify's store_images path (with
constructed probabilities, so the order is known), the queue's order and paging, decisions
(label, skip, labelled elsewhere, deleted), and the next training's manifest taking the labels."""

from __future__ import annotations

from typing import Any

import pytest

from kestrel.domain.review import category_margin, tag_closeness
from kestrel.store import lifecycle
from kestrel.store.accounts import ensure_owner
from kestrel.store.keys import Space
from kestrel.store.tasks import get_task
from kestrel.usecases.classify import Prediction, store_classified
from tests.api.http import Api
from tests.conftest import OWNER_A, RunningServer
from tests.flow.conftest import make_trainable_task
from tests.photos import distinct_photos


@pytest.fixture
def api(api_server: RunningServer) -> Api:
    return Api(api_server.url, api_server.token)


def _space(server: RunningServer) -> Space:
    return Space.default_of(ensure_owner(server.ports.items, OWNER_A).id)


def _ranked(labels: list[dict[str, Any]], probs: list[float]) -> list[dict[str, Any]]:
    pairs = sorted(zip(labels, probs, strict=True), key=lambda pair: -pair[1])
    return [{"id": label["id"], "name": label["name"], "prob": prob} for label, prob in pairs]


def _store(
    server: RunningServer,
    task_id: str,
    data: bytes,
    labels: list[dict[str, Any]],
    probs: list[float],
    thresholds: list[float] | None = None,
) -> str:
    """What classify's store_images does for one record, with these probabilities."""
    space = _space(server)
    task = get_task(server.ports.items, space, task_id)
    if thresholds is None:
        prediction = Prediction(1, "model-1", _ranked(labels, probs), None, category_margin(probs))
    else:
        over = [p for p in zip(labels, probs, thresholds, strict=True) if p[1] >= p[2]]
        best = _ranked([label for label, _, _ in over], [prob for _, prob, _ in over])
        prediction = Prediction(1, "model-1", _ranked(labels, probs), best, tag_closeness(probs, thresholds))
    return store_classified(server.ports, space, task, data, prediction)


def _queue(api: Api, task_id: str, page_size: int = 2) -> list[dict[str, Any]]:
    """The whole queue, following the ``next`` links."""
    page = api.get(f"task/{task_id}/review/", params={"page_size": page_size})
    results = list(page["results"])
    while page["next"]:
        page = api.get(page["next"])
        results.extend(page["results"])
    assert len(results) == api.get(f"task/{task_id}/review/")["count"]
    return results


def test_queue_order_decisions_and_the_next_training(api_server: RunningServer, api: Api) -> None:
    trainable = make_trainable_task(api)
    task_id = trainable.task["id"]
    cat, coffee = trainable.labels
    photos = distinct_photos(7, "rocket", side=48)
    # cat/coffee probabilities: margins 0.8, 0.02, 0.4, 0.1, 0.4 (a tie: broken by image id)
    constructed = [[0.9, 0.1], [0.49, 0.51], [0.7, 0.3], [0.45, 0.55], [0.3, 0.7]]
    stored = [_store(api_server, task_id, photos[i], [cat, coffee], probs) for i, probs in enumerate(constructed)]
    # The same bytes classified again: one image, one entry, with the newer prediction (margin 0.0).
    assert _store(api_server, task_id, photos[1], [cat, coffee], [0.5, 0.5]) == stored[1]
    plain = api.upload(photos[5])["id"]  # unlabelled, never classified: after the predicted ones
    api.upload(photos[6], labels=[cat["id"]])  # labelled: never in the queue

    queue = _queue(api, task_id)
    expected = [stored[1], stored[3], *sorted([stored[2], stored[4]]), stored[0], plain]
    assert [item["image"]["id"] for item in queue] == expected
    assert [item["uncertainty"] for item in queue] == [0.0, 0.1, 0.4, 0.4, 0.8, None]
    first = queue[0]
    assert first["prediction"]["version"] == 1 and first["prediction"]["best_labels"] is None
    assert [label["prob"] for label in first["prediction"]["labels"]] == [0.5, 0.5]
    assert (
        first["suggestion"] == [first["prediction"]["labels"][0]["id"]]
        and queue[-1]["suggestion"] == []
        and queue[-1]["prediction"] is None
    )
    assert first["image"]["thumb_img_path"] and first["image"]["labels"] == []
    page2 = api.get(f"task/{task_id}/review/", params={"page": 2, "page_size": 2})
    assert [item["image"]["id"] for item in page2["results"]] == expected[2:4] and page2["count"] == 6

    # A label for the tie, a skip, a label put on from the Data tab, a deletion.
    done = api.post(f"task/{task_id}/review/{stored[1]}/", {"label_ids": [cat["id"]]})
    assert (done["status"], done["label_ids"], done["task_id"]) == ("reviewed", [cat["id"]], task_id)
    assert [label["id"] for label in api.get(f"training-image/{stored[1]}/")["labels"]] == [cat["id"]]
    assert api.post(f"task/{task_id}/review/{stored[3]}/", {"skip": True})["status"] == "skipped"
    api.post(f"training-image/{stored[0]}/add-label/", {"label_id": coffee["id"]})
    api.ok("DELETE", f"training-image/{stored[4]}/", 204)
    api.post(f"task/{task_id}/review/{plain}/", {"label_ids": [coffee["id"]]})
    assert [item["image"]["id"] for item in _queue(api, task_id)] == [stored[2]]
    summary = api.get(f"task/{task_id}/review/summary/")
    assert summary == {
        "task_id": task_id,
        "queued": 1,
        "reviewed": 3,
        "skipped": 1,
        "last_version": None,
        "reviewed_since_last_version": 3,
    }

    # The next version trains on the reviewed images, with the labels the person gave.
    model = api.post(f"task/{task_id}/train/", status=201)
    manifest = lifecycle.build_manifest(
        api_server.ports.items, lifecycle.JobRef(_space(api_server), task_id, model["id"])
    )
    trained = {image["id"]: image["labels"] for image in manifest["images"]}
    assert trained[stored[1]] == [cat["id"]] and trained[stored[0]] == [coffee["id"]]
    assert trained[plain] == [coffee["id"]] and stored[3] not in trained and stored[2] not in trained
    after = api.get(f"task/{task_id}/review/summary/")
    assert (after["last_version"], after["reviewed_since_last_version"]) == (model["version"], 0)
    api.post(f"task/{task_id}/review/{stored[2]}/", {"label_ids": [cat["id"]]})
    assert api.get(f"task/{task_id}/review/summary/")["reviewed_since_last_version"] == 1
    assert api.get(f"task/{task_id}/review/")["count"] == 0


def test_tag_queue_orders_by_closeness_to_the_threshold(api_server: RunningServer, api: Api) -> None:
    task = api.create_task("Tags", "multi_label")
    tags = [api.create_label(name, "tag") for name in ("sky", "sea")]
    for tag in tags:
        api.post(f"task/{task['id']}/add-label/", {"label_id": tag["id"]})
    negative = next(label for label in api.get(f"task/{task['id']}/")["labels"] if label["negative_for_task"])
    photos = distinct_photos(3, "astronaut", side=48)
    thresholds = [0.5, 0.3]
    sure = _store(api_server, task["id"], photos[0], tags, [0.95, 0.9], thresholds)  # closeness 0.45
    unsure = _store(api_server, task["id"], photos[1], tags, [0.1, 0.33], thresholds)  # 0.03
    middle = _store(api_server, task["id"], photos[2], tags, [0.7, 0.1], thresholds)  # 0.2
    queue = _queue(api, task["id"])
    assert [item["image"]["id"] for item in queue] == [unsure, middle, sure]
    assert [item["uncertainty"] for item in queue] == [0.03, 0.2, 0.45]
    assert queue[0]["suggestion"] == [tags[1]["id"]]
    assert queue[2]["suggestion"] == [tags[0]["id"], tags[1]["id"]]
    assert [label["name"] for label in queue[1]["prediction"]["best_labels"]] == ["sky"]

    both = api.post(f"task/{task['id']}/review/{sure}/", {"label_ids": [tags[0]["id"], tags[1]["id"]]})
    assert sorted(both["label_ids"]) == sorted(tag["id"] for tag in tags)
    api.post(f"task/{task['id']}/review/{unsure}/", {"label_ids": [negative["id"]]})  # none of the tags
    mixed = api.call("POST", f"task/{task['id']}/review/{middle}/", json={"label_ids": [negative["id"], tags[0]["id"]]})
    assert mixed.status_code == 400 and "alone" in mixed.json()["detail"]
    assert [item["image"]["id"] for item in _queue(api, task["id"])] == [middle]


def test_bad_decisions_and_listings_are_refused_clearly(api_server: RunningServer, api: Api) -> None:
    task = api.create_task("Scenes")
    other = api.create_task("Other")
    labels = [api.create_label(name) for name in ("forest", "beach")]
    for label in labels:
        api.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
    stranger = api.create_label("stranger")
    api.post(f"task/{other['id']}/add-label/", {"label_id": stranger["id"]})
    image = _store(api_server, task["id"], distinct_photos(1, "coffee", side=48)[0], labels, [0.6, 0.4])
    base = f"task/{task['id']}/review/{image}/"

    def refused(body: Any, status: int = 400, path: str = base) -> str:
        response = api.call("POST", path, json=body)
        assert response.status_code == status, response.text
        return str(response.json()["detail"])

    assert "not both" in refused({"label_ids": [labels[0]["id"]], "skip": True})
    assert "'skip'" in refused({})
    assert stranger["id"] in refused({"label_ids": [stranger["id"]]})
    assert "exactly one" in refused({"label_ids": [label["id"] for label in labels]})
    assert "colour" in refused({"label_ids": [labels[0]["id"]], "colour": "red"})
    assert "not found" in refused({"skip": True}, 404, f"task/{task['id']}/review/{labels[0]['id']}/")
    assert "not found" in refused({"skip": True}, 404, f"task/{stranger['id']}/review/{image}/")
    assert api.call("GET", f"task/{task['id']}/review/", params={"page": 3}).status_code == 404
    assert api.call("GET", f"task/{task['id']}/review/", params={"page_size": 100_000}).status_code == 400
    assert api.call("GET", f"task/{task['id']}/review/", params={"verified": 1}).status_code == 400
    # Another task's queue is its own: the image is not in it.
    assert api.get(f"task/{other['id']}/review/")["count"] == 1  # unlabelled, unpredicted there
    assert api.get(f"task/{other['id']}/review/")["results"][0]["prediction"] is None
    # A category image already labelled for the task cannot take a second category.
    api.post(f"training-image/{image}/add-label/", {"label_id": labels[0]["id"]})
    assert "already has label" in refused({"label_ids": [labels[1]["id"]]})
    assert "nothing to skip" in refused({"skip": True})
    # Deleting the task deletes its entries: its queue is gone with it.
    api.ok("DELETE", f"task/{task['id']}/", 204)
    assert api.call("GET", f"task/{task['id']}/review/").status_code == 404
