"""Counters and membership stay right when many requests change them at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.api.http import Api
from tests.photos import distinct_photos


def test_concurrent_labelling_keeps_counts_exact(api_server: Any) -> None:
    api = Api(api_server.url, api_server.token)
    task = api.create_task("busy")
    labels = [api.create_label(f"label {i}") for i in range(4)]
    images = [api.upload(data) for data in distinct_photos(10)]

    def label_everything(label: dict[str, Any]) -> None:
        client = Api(api_server.url, api_server.token)
        client.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
        for image in images:
            client.post(f"training-image/{image['id']}/add-label/", {"label_id": label["id"]})

    with ThreadPoolExecutor(max_workers=8) as pool:
        # Each label twice, concurrently: the second pass must change nothing.
        list(pool.map(label_everything, labels + labels))

    for label in labels:
        assert api.get(f"label/{label['id']}")["images_count"] == 10
        assert api.get(f"label/{label['id']}")["tasks_count"] == 1
        assert api.get("training-image/", params={"labels": label["id"]})["count"] == 10
    assert len(api.get(f"task/{task['id']}")["labels"]) == 4

    def unlabel(label: dict[str, Any]) -> None:
        client = Api(api_server.url, api_server.token)
        for image in images[:5]:
            client.call("POST", f"training-image/{image['id']}/remove-label/", json={"label_id": label["id"]})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(unlabel, labels + labels))
    for label in labels:
        assert api.get(f"label/{label['id']}")["images_count"] == 5
