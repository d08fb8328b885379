"""Owners never see each other's data: another owner's id answers 404, and lists leave it out."""

from __future__ import annotations

from typing import Any

from tests.api.http import Api
from tests.photos import photo


def test_second_owner_gets_404_everywhere_and_sees_nothing(api_server: Any) -> None:
    alice = Api(api_server.url, api_server.token)
    bob = Api(api_server.url, api_server.new_token("bob@example.com"))

    task = alice.create_task("Alice's task")
    label = alice.create_label("alice-label")
    alice.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
    image = alice.upload(photo("chelsea", 100), labels=[label["id"]])
    bobs_label = bob.create_label("bob-label")
    bobs_task = bob.create_task("Bob's task")

    tid, lid, iid = task["id"], label["id"], image["id"]
    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"task/{tid}/", None),
        ("PATCH", f"task/{tid}/", {"name": "stolen"}),
        ("PUT", f"task/{tid}/", {"name": "stolen"}),
        ("POST", f"task/{tid}/add-label/", {"label_id": bobs_label["id"]}),
        ("POST", f"task/{tid}/remove-label/", {"label_id": lid}),
        ("POST", f"task/{tid}/train/", None),
        ("POST", f"task/{bobs_task['id']}/add-label/", {"label_id": lid}),
        ("GET", f"label/{lid}/", None),
        ("PUT", f"label/{lid}/", {"name": "stolen"}),
        ("GET", f"training-image/{iid}/", None),
        ("PUT", f"training-image/{iid}/", {"meta_data": {"stolen": True}}),
        ("POST", f"training-image/{iid}/add-label/", {"label_id": bobs_label["id"]}),
        ("POST", f"training-image/{iid}/remove-label/", {"label_id": lid}),
        ("POST", "training-image/update", {"images": [iid], "mark-test": True}),
        ("GET", "label/", None),  # with ?task= below
        ("DELETE", f"training-image/{iid}/", None),
        ("DELETE", f"label/{lid}/", None),
        ("DELETE", f"task/{tid}/", None),
    ]
    for method, path, body in attempts:
        params = {"task": tid} if path == "label/" else None
        response = bob.call(method, path, json=body, params=params)
        assert response.status_code == 404, f"{method} {path}: {response.status_code} {response.text}"
        assert "detail" in response.json()
        assert "alice" not in response.text.lower()  # echoes at most the id bob sent, never data

    for listing, params in (
        ("task/", {}),
        ("label/", {}),
        ("training-image/", {}),
        ("model/", {}),
        ("training-image/", {"labels": bobs_label["id"]}),
    ):
        found = bob.get(listing, params=params)
        assert all("alice" not in str(item).lower() for item in found["results"])
        assert iid not in str(found) and tid not in str(found) and lid not in str(found)
    assert bob.call("GET", "training-image/", params={"labels": lid}).status_code == 404
    assert bob.call("GET", "model/", params={"task": tid}).status_code == 404

    # Alice's data is untouched by all of that.
    assert alice.get(f"task/{tid}")["name"] == "Alice's task"
    kept = alice.get(f"training-image/{iid}")
    assert kept["meta_data"] == {} and kept["test_image"] is False and [x["id"] for x in kept["labels"]] == [lid]
    assert alice.get(f"label/{lid}")["images_count"] == 1


def test_a_cursor_is_useless_to_another_owner(api_server: Any) -> None:
    alice = Api(api_server.url, api_server.token)
    bob = Api(api_server.url, api_server.new_token("bob@example.com"))
    for index in range(3):
        alice.create_task(f"task {index}")
        bob.create_task(f"bob {index}")
    page = alice.get("task/", params={"page_size": 1})
    stolen = bob.call("GET", page["next"])
    assert stolen.status_code == 400 and "cursor" in stolen.json()["detail"]
