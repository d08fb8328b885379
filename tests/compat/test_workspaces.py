"""Workspaces and Label.wipe() through the unmodified ximilar-client, on both runtimes.

The client selects a workspace with ``RecognitionClient(..., workspace=<id>)``: it then sends
``workspace`` in the query of every GET/DELETE and in the body of every POST/PUT."""

from __future__ import annotations

import base64
from typing import Any

from ximilar.client import RecognitionClient

from tests.conftest import RunningServer
from tests.photos import distinct_photos


def _client(server: RunningServer, workspace: str | None = None) -> RecognitionClient:
    # resource_name=None: the client would otherwise post the token to Ximilar's own servers.
    if workspace is None:
        return RecognitionClient(server.token, endpoint=server.url, resource_name=None)
    return RecognitionClient(server.token, endpoint=server.url, workspace=workspace, resource_name=None)


def _workspace(server: RunningServer, name: str) -> dict[str, Any]:
    response = server.request("POST", "account/v2/workspace/", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def test_label_wipe_deletes_the_label_and_every_image_that_carries_it(api_server: RunningServer) -> None:
    client = _client(api_server)
    task, _ = client.create_task("Wipe")
    doomed, _ = client.create_label("doomed")
    kept, _ = client.create_label("kept")
    task.add_label(doomed.id)
    task.add_label(kept.id)
    photos = distinct_photos(5, "chelsea", side=48)
    only_doomed, _ = client.upload_images([{"_base64": _b64(photos[0]), "labels": [doomed.id]}])
    both, _ = client.upload_images([{"_base64": _b64(photos[1]), "labels": [doomed.id, kept.id]}])
    only_kept, _ = client.upload_images([{"_base64": _b64(photos[2]), "labels": [kept.id]}])
    unlabelled, _ = client.upload_images([{"_base64": _b64(photos[3])}])

    assert client.get_label(doomed.id)[0].get_images_count() == 2
    doomed.wipe()

    assert client.get_label(doomed.id)[0] is None  # the label is gone
    for gone in (only_doomed[0], both[0]):  # ... with every image that had it, other labels or not
        assert client.get_image(gone.id)[0] is None
    assert client.get_image(only_kept[0].id)[0] is not None
    assert client.get_image(unlabelled[0].id)[0] is not None
    remaining = client.get_label(kept.id)[0]
    assert remaining.get_images_count() == 1  # the other label's counter follows
    labels_of_task, _ = client.get_task(task.id)[0].get_labels()
    assert [label.name for label in labels_of_task] == ["kept"]
    images, _, info = client.get_training_images()
    assert info["count"] == 2 and {image.id for image in images} == {only_kept[0].id, unlabelled[0].id}
    # The same bytes may be uploaded again: the duplicate marker went with the image.
    again, status = client.upload_images([{"_base64": _b64(photos[1])}])
    assert status["status"] == "OK" and len(again) == 1


def test_wipe_of_an_unknown_label_raises_instead_of_looking_done(api_server: RunningServer) -> None:
    response = api_server.request("DELETE", "recognition/v2/label/5b3e7c9e-2f4e-4a43-9f0e-1c2d3e4f5a6b/wipe")
    assert response.status_code == 404 and "not found" in response.json()["detail"]


def test_two_workspaces_never_see_each_others_data(api_server: RunningServer) -> None:
    blue_ws, green_ws = _workspace(api_server, "Blue"), _workspace(api_server, "Green")
    blue, green = _client(api_server, blue_ws["id"]), _client(api_server, green_ws["id"])
    default = _client(api_server)

    blue_task, status = blue.create_task("Blue task")
    assert status["status"] == "OK" and blue_task.workspace == blue_ws["id"]
    green_task, _ = green.create_task("Green task")
    blue_label, _ = blue.create_label("sky")
    green_label, _ = green.create_label("grass")
    blue_task.add_label(blue_label.id)
    green_task.add_label(green_label.id)
    photo_a, photo_b = distinct_photos(2, "coffee", side=48)
    blue_images, _ = blue.upload_images([{"_base64": _b64(photo_a), "labels": [blue_label.id]}])
    # The same bytes in another workspace are not a duplicate there.
    green_images, status = green.upload_images([{"_base64": _b64(photo_a), "labels": [green_label.id]}])
    assert status["status"] == "OK" and blue_images[0].id != green_images[0].id
    default_images, _ = default.upload_images([{"_base64": _b64(photo_b)}])

    # Lists hold only their own workspace's items.
    assert [t.name for t in blue.get_all_tasks()[0]] == ["Blue task"]
    assert [t.name for t in green.get_all_tasks()[0]] == ["Green task"]
    assert default.get_all_tasks()[0] == []
    assert [label.name for label in blue.get_all_labels()[0]] == ["sky"]
    assert [label.name for label in green.get_all_labels()[0]] == ["grass"]
    assert [i.id for i in blue.get_training_images()[0]] == [blue_images[0].id]
    assert [i.id for i in green.get_training_images()[0]] == [green_images[0].id]
    assert [i.id for i in default.get_training_images()[0]] == [default_images[0].id]

    # Ids of another workspace are not found, whatever the route.
    assert blue.get_task(green_task.id)[0] is None
    assert default.get_task(blue_task.id)[0] is None
    assert blue.get_label(green_label.id)[0] is None
    assert blue.get_image(green_images[0].id)[0] is None
    assert green.get_image(default_images[0].id)[0] is None
    attach = blue_task.add_label(green_label.id)
    assert "not found" in attach["detail"]
    # noresize: the client would otherwise re-encode the image with OpenCV (not installed here).
    record = {"_base64": _b64(photo_a).decode(), "noresize": True}
    answer = blue.classify_on_task([record], task_id=green_task.id)
    # None once classify errors carry status {code, text} (the client then swallows its own raise).
    assert answer is None or answer["detail"] == f"Task {green_task.id} not found"
    on_green = api_server.request(
        "POST",
        "recognition/v2/classify/",
        json={"task_id": green_task.id, "records": [{"_base64": _b64(photo_a).decode()}], "workspace": blue_ws["id"]},
    )
    assert on_green.status_code == 404
    untrained = api_server.request(
        "POST",
        "recognition/v2/classify/",
        json={"task_id": green_task.id, "records": [{"_base64": _b64(photo_a).decode()}], "workspace": green_ws["id"]},
    )
    assert untrained.status_code == 400 and "no trained model" in untrained.json()["detail"]

    # Deleting in one workspace leaves the other alone.
    green.remove_image(blue_images[0].id)
    assert blue.get_image(blue_images[0].id)[0] is not None
    assert green.get_label(green_label.id)[0].get_images_count() == 1


def test_workspace_routes_list_rename_and_delete_when_empty(api_server: RunningServer) -> None:
    listed = api_server.request("GET", "account/v2/workspace/").json()
    assert [(w["name"], w["is_default"]) for w in listed] == [("Default", True)]
    default_id = listed[0]["id"]
    created = _workspace(api_server, "Shelves")
    assert created["is_default"] is False and created["owner"] == listed[0]["owner"]

    renamed = api_server.request("PATCH", f"account/v2/workspace/{created['id']}/", json={"name": "Aisles"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Aisles"
    default_renamed = api_server.request("PUT", f"account/v2/workspace/{default_id}", json={"name": "Main"})
    assert default_renamed.json()["name"] == "Main" and default_renamed.json()["is_default"] is True
    names = [w["name"] for w in api_server.request("GET", "account/v2/workspace").json()]
    assert names == ["Main", "Aisles"]

    task, _ = _client(api_server, created["id"]).create_task("In use")
    busy = api_server.request("DELETE", f"account/v2/workspace/{created['id']}/")
    assert busy.status_code == 409 and "task(s)" in busy.json()["detail"]
    _client(api_server, created["id"]).remove_task(task.id)
    assert api_server.request("DELETE", f"account/v2/workspace/{created['id']}/").status_code == 204
    assert api_server.request("GET", f"account/v2/workspace/{created['id']}/").status_code == 404
    gone = api_server.request("GET", "recognition/v2/task/", params={"workspace": created["id"]})
    assert gone.status_code == 404 and "Workspace" in gone.json()["detail"]

    refused = api_server.request("DELETE", f"account/v2/workspace/{default_id}/")
    assert refused.status_code == 400 and "default workspace" in refused.json()["detail"]


def test_workspaces_of_another_owner_are_not_found(api_server: RunningServer) -> None:
    mine = _workspace(api_server, "Mine")
    other_token = api_server.new_token("someone-else@example.com")
    theirs = api_server.request("GET", "recognition/v2/task/", token=other_token, params={"workspace": mine["id"]})
    assert theirs.status_code == 404
    assert api_server.request("GET", f"account/v2/workspace/{mine['id']}/", token=other_token).status_code == 404
    listed = api_server.request("GET", "account/v2/workspace/", token=other_token).json()
    assert [w["name"] for w in listed] == ["Default"]
    assert api_server.request("GET", "account/v2/workspace/", token=None).status_code == 401
    odd = api_server.request("GET", "recognition/v2/label/", params={"workspace": "x" * 5000})
    assert odd.status_code == 404 and "a workspace is named by its id" in odd.json()["detail"]


def test_default_workspace_answers_to_its_id_its_name_and_no_parameter(api_server: RunningServer) -> None:
    client = _client(api_server)
    task, _ = client.create_task("Everywhere")
    default_id = task.workspace  # the client keeps it and sends it back with the task's calls
    for workspace in (None, "Default", default_id):
        params = {} if workspace is None else {"workspace": workspace}
        listed = api_server.request("GET", "recognition/v2/task/", params=params).json()
        assert [t["id"] for t in listed["results"]] == [task.id], workspace
    both = api_server.request(
        "POST", "recognition/v2/label/", params={"workspace": "Default"}, json={"name": "x", "workspace": default_id}
    )
    assert both.status_code == 400 and "more than once" in both.json()["detail"]
