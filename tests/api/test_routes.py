"""Every route of task/, label/, training-image/ and model/ over real HTTP, on both runtimes."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests

from tests.api.http import Api
from tests.photos import distinct_photos, photo


@pytest.fixture
def api(api_server: Any) -> Api:
    return Api(api_server.url, api_server.token)


def test_task_crud_with_and_without_trailing_slash(api: Api) -> None:
    created = api.ok("POST", "task", 201, json={"name": "Scenes", "description": "d"})
    assert created["type"] == "multi_class" and created["production_version"] == -1
    assert created["last_train_status"] is None and created["labels"] == []
    task_id = created["id"]
    assert api.get(f"task/{task_id}")["name"] == "Scenes"
    assert api.get(f"task/{task_id}/")["name"] == "Scenes"
    assert api.ok("PATCH", f"task/{task_id}/", json={"name": "Renamed"})["name"] == "Renamed"
    changed = api.ok("PUT", f"task/{task_id}", json={"description": "new", "auto_deploy": True})
    assert (changed["name"], changed["description"], changed["auto_deploy"]) == ("Renamed", "new", True)
    assert api.ok("PATCH", f"task/{task_id}/", json={"type": "multi_label"})["type"] == "multi_label"
    api.ok("DELETE", f"task/{task_id}/", 204)
    assert api.call("GET", f"task/{task_id}/").status_code == 404


def test_forms_like_curl(api: Api) -> None:
    """`curl -d name=...` (urlencoded) and `curl -F name=...` (multipart) work like JSON."""
    urlencoded = api.ok("POST", "task/", 201, data={"name": "Form task", "type": "multi_label"})
    assert (urlencoded["name"], urlencoded["type"]) == ("Form task", "multi_label")
    multipart = api.ok("POST", "label/", 201, files={"name": (None, "tagged"), "type": (None, "tag")})
    assert (multipart["name"], multipart["type"]) == ("tagged", "tag")
    api.ok("POST", f"task/{urlencoded['id']}/add-label/", data={"label_id": multipart["id"]})

    image = api.ok(
        "POST",
        "training-image/",
        201,
        files={
            "img_path": ("cat.png", photo("chelsea", 120, "PNG"), "image/png"),
            "meta_data": (None, '{"source": "curl"}'),
            "test_image": (None, "true"),
        },
    )
    assert image["meta_data"] == {"source": "curl"} and image["test_image"] is True
    assert image["img_width"] == 120


def test_labels_search_filter_and_counts(api: Api) -> None:
    task = api.create_task("Scenes")
    names = ["Forest", "rain forest", "sea", "street"]
    labels = {name: api.create_label(name) for name in names}
    for name in ("Forest", "sea"):
        api.post(f"task/{task['id']}/add-label/", {"label_id": labels[name]["id"]})
    api.post(f"task/{task['id']}/add-label/", {"label_id": labels["sea"]["id"]})  # again: no change

    assert {label["name"] for label in api.get("label/", params={"search": "FOREST"})["results"]} == {
        "Forest",
        "rain forest",
    }
    of_task = api.get("label/", params={"task": task["id"]})
    assert of_task["count"] == 2 and {label["name"] for label in of_task["results"]} == {"Forest", "sea"}
    assert api.get(f"label/{labels['sea']['id']}")["tasks_count"] == 1
    assert [label["name"] for label in api.get(f"task/{task['id']}")["labels"]] == ["Forest", "sea"]

    changed = api.ok("PUT", f"label/{labels['street']['id']}/", json={"output_name": "road", "description": "x"})
    assert (changed["name"], changed["output_name"]) == ("street", "road")

    api.post(f"task/{task['id']}/remove-label", {"label_id": labels["sea"]["id"]})
    assert api.get(f"label/{labels['sea']['id']}/")["tasks_count"] == 0
    api.ok("DELETE", f"label/{labels['Forest']['id']}", 204)
    assert api.get(f"task/{task['id']}")["labels"] == []


def test_images_labels_filters_and_metadata(api: Api) -> None:
    cat, dog = api.create_label("cat"), api.create_label("dog")
    photos = distinct_photos(5)
    first = api.upload(photos[0], labels=[cat["id"]], meta_data={"n": 1})
    second = api.upload(photos[1], labels=[cat["id"], dog["id"]])
    third = api.upload(photos[2], test_image=True)
    assert {label["name"] for label in second["labels"]} == {"cat", "dog"}
    assert api.get(f"label/{cat['id']}")["images_count"] == 2

    def ids(**params: Any) -> set[str]:
        return {image["id"] for image in api.get("training-image/", params=params)["results"]}

    assert ids() == {first["id"], second["id"], third["id"]}
    assert ids(labels=cat["id"]) == {first["id"], second["id"]}
    assert ids(labels=f"{cat['id']},{dog['id']}") == {second["id"]}
    assert ids(not_labels=cat["id"]) == {third["id"]}
    assert ids(test="true") == {third["id"]}
    assert ids(test="false") == {first["id"], second["id"]}

    api.post(f"training-image/{third['id']}/add-label/", {"label_id": dog["id"]})
    api.post(f"training-image/{second['id']}/remove-label", {"label_id": dog["id"]})
    assert ids(labels=dog["id"]) == {third["id"]}
    assert api.get(f"label/{dog['id']}")["images_count"] == 1

    updated = api.ok("PUT", f"training-image/{first['id']}", json={"meta_data": {"n": 2, "tags": ["a"]}})
    assert updated["meta_data"] == {"n": 2, "tags": ["a"]}
    assert api.get(f"training-image/{first['id']}/")["meta_data"] == {"n": 2, "tags": ["a"]}

    batch = api.post("training-image/update", {"labels": [cat["id"]], "labels-add": [dog["id"]], "mark-test": True})
    assert batch == {"status": "OK", "updated": 2}
    assert ids(labels=dog["id"]) == {first["id"], second["id"], third["id"]}
    assert ids(test="true") == {first["id"], second["id"], third["id"]}

    api.ok("DELETE", f"training-image/{first['id']}/", 204)
    assert api.get(f"label/{cat['id']}")["images_count"] == 1
    assert api.call("GET", f"training-image/{first['id']}").status_code == 404
    # The bytes of a deleted image can be uploaded again.
    assert api.upload(photos[0])["id"] != first["id"]


def test_image_urls_serve_the_original_and_a_thumbnail(api: Api, api_server: Any) -> None:
    original = photo("rocket", 400)
    image = api.upload(original)
    if api_server.runtime != "local":
        assert image["img_path"].startswith("https://") and "X-Amz-Signature" in image["img_path"]
        return
    fetched = requests.get(image["img_path"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == original
    thumb = requests.get(image["thumb_img_path"], timeout=10)
    assert thumb.status_code == 200 and thumb.headers["Content-Type"].startswith("image/")
    assert len(thumb.content) < len(original)


def test_pagination_follows_next_and_previous(api: Api) -> None:
    label = api.create_label("many")
    uploaded = [api.upload(data, labels=[label["id"]])["id"] for data in distinct_photos(12)]
    first = api.get("training-image/", params={"labels": label["id"], "page_size": 5})
    assert first["count"] == 12 and len(first["results"]) == 5 and first["previous"] is None
    assert first["next"].startswith(api.base_url)
    second = api.get(first["next"])
    third = api.get(second["next"])
    assert third["next"] is None and len(third["results"]) == 2
    # Ids, not whole answers: on AWS each answer presigns its image URLs anew (X-Amz-Date changes by the second).
    assert [image["id"] for image in api.get(second["previous"])["results"]] == [
        image["id"] for image in first["results"]
    ]
    seen = [image["id"] for page in (first, second, third) for image in page["results"]]
    assert sorted(seen) == sorted(uploaded) and seen[0] == uploaded[-1]  # newest first
    # ?page=N reaches the same page without a cursor.
    by_number = api.get("training-image/", params={"labels": label["id"], "page_size": 5, "page": 3})["results"]
    assert [image["id"] for image in by_number] == [image["id"] for image in third["results"]]


def test_presigned_upload_flow(api: Api, api_server: Any) -> None:
    grant = api.post("training-image/upload-url/", {"size": 5000}, status=201)
    assert grant["method"] == "PUT" and grant["max_bytes"] >= 5000
    if api_server.runtime != "local":
        assert "X-Amz-Signature" in grant["url"]
        return
    data = photo("coffee", 300)
    assert requests.put(grant["url"], data=data, timeout=10).status_code in (200, 201, 204)
    image = api.post("training-image/", {"upload_id": grant["upload_id"]}, status=201)
    assert image["img_width"] == 300 or image["img_height"] == 300
    again = api.call("POST", "training-image/", json={"upload_id": grant["upload_id"]})
    assert again.status_code == 400 and "upload" in again.json()["detail"]


def test_models_list_is_empty_until_training(api: Api) -> None:
    task = api.create_task()
    assert api.get("model/", params={"task": task["id"]}) == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }
    assert api.call("GET", "model/8a0d1f5e-2d0c-4c1e-9a55-0b7f6f0c2d11/").status_code == 404


def test_base64_with_data_url_prefix(api: Api) -> None:
    data = photo("astronaut", 64, "WEBP")
    text = "data:image/webp;base64," + base64.b64encode(data).decode()
    image = api.post("training-image/", {"base64": text}, status=201)
    assert image["img_width"] == 64
