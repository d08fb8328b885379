"""A multi_label task end to end: tags, negatives through the negative label, thresholds, best_labels."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from PIL import Image

from kestrel.local.worker import LocalWorker
from tests.api.http import Api
from tests.photos import distinct_photos, encode, photo, sample

pytestmark = pytest.mark.slow


def _side_by_side(left: str, right: str, index: int) -> bytes:
    """A real two-subject picture: crops of two sample photos next to each other."""
    a, b = sample(left), sample(right)
    box = 160 + index * 7
    canvas = Image.new("RGB", (2 * box, box))
    canvas.paste(a.crop((index * 5, index * 3, index * 5 + box, index * 3 + box)), (0, 0))
    canvas.paste(b.crop((index * 4, index * 6, index * 4 + box, index * 6 + box)), (box, 0))
    return encode(canvas.resize((192, 96)))


def test_multi_label_training_and_best_labels(local_server: Any) -> None:
    api = Api(local_server.url, local_server.token)
    task = api.create_task("Tags", "multi_label")
    negative = next(label for label in api.get(f"task/{task['id']}")["labels"] if label["negative_for_task"])
    cat, coffee = api.create_label("cat", "tag"), api.create_label("coffee", "tag")
    for label in (cat, coffee):
        api.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
    for data in distinct_photos(16, "chelsea", side=80):
        api.upload(data, labels=[cat["id"]])
    for data in distinct_photos(16, "coffee", side=80):
        api.upload(data, labels=[coffee["id"]])
    for index in range(8):
        api.upload(_side_by_side("chelsea", "coffee", index), labels=[cat["id"], coffee["id"]])
    for data in distinct_photos(12, "rocket", side=80):
        api.upload(data, labels=[negative["id"]])

    model = api.post(f"task/{task['id']}/train/", status=201)
    LocalWorker(local_server.ports).run_until_idle()
    trained = api.get(f"model/{model['id']}")
    assert trained["train_status"] == "TRAINED", trained
    metrics = trained["metrics"]
    assert metrics["counts"]["negatives"] == 12 and len(metrics["thresholds"]) == 2
    assert set(metrics["per_label"]) == {cat["id"], coffee["id"]}  # the negative label is not an output

    records = [
        {"_base64": base64.b64encode(photo("chelsea", 200)).decode(), "_id": "cat"},
        {"_base64": base64.b64encode(photo("rocket", 200)).decode(), "_id": "rocket"},
    ]
    answer = api.post("classify/", {"task_id": task["id"], "records": records})
    by_id = {record["_id"]: record for record in answer["records"]}
    assert [label["name"] for label in by_id["cat"]["best_labels"]] == ["cat"]
    assert by_id["rocket"]["best_labels"] == []
    assert {label["name"] for label in by_id["cat"]["labels"]} == {"cat", "coffee"}
