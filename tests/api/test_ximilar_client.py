"""The unmodified ximilar-client package drives Kestrel over real HTTP, on both runtimes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from ximilar.client import RecognitionClient

from tests.photos import distinct_photos, photo


@pytest.fixture
def client(api_server: Any) -> RecognitionClient:
    return RecognitionClient(api_server.token, endpoint=api_server.url)


def test_tasks_of_both_types_and_their_labels(client: RecognitionClient) -> None:
    scenes, status = client.create_task("Scenes", description="outdoor scenes")
    assert status["status"] == "OK" and scenes.type == "multi_class" and scenes.production_version == -1
    tagging, _ = client.create_task("Tagging", task_type="multi_label")
    assert tagging.type == "multi_label"

    forest, _ = client.create_label("forest")
    sea, _ = client.create_label("sea", description="open water")
    striped, _ = client.create_label("striped", label_type="tag")
    assert (forest.type, striped.type) == ("category", "tag")

    for label in (forest, sea):
        scenes.add_label(label.id)
    tagging.add_label(striped.id)
    assert sorted(label.name for label in scenes.get_labels()[0]) == ["forest", "sea"]

    scenes.invalidate()
    scenes.detach_label(sea.id)
    labels, _ = client.get_task(scenes.id)[0].get_labels()
    assert [label.name for label in labels] == ["forest"]

    tasks, status = client.get_all_tasks()
    assert status["status"] == "OK"
    assert {task.name for task in tasks} == {"Scenes", "Tagging"}
    all_labels, _ = client.get_all_labels()
    assert {label.name for label in all_labels} == {"forest", "sea", "striped", "Tagging (negative)"}
    negative, _ = client.get_task(tagging.id)[0].get_negative_label()
    assert negative is not None and negative.negative_for_task == tagging.id
    found, _ = client.get_labels_by_substring("EA")  # case-insensitive substring
    assert [label.name for label in found] == ["sea"]

    fetched, _ = client.get_label(forest.id)
    assert fetched.name == "forest" and fetched.tasks_count == 1
    assert client.get_task(tagging.id)[0].name == "Tagging"


def test_upload_label_page_and_remove(client: RecognitionClient, tmp_path: Path) -> None:
    task, _ = client.create_task("Cats")
    cat, _ = client.create_label("cat")
    other, _ = client.create_label("other")
    task.add_label(cat.id)

    cat_file = tmp_path / "chelsea.jpg"
    cat_file.write_bytes(photo("chelsea", 200))
    assert cat_file.stat().st_size < 100_000  # the client re-encodes bigger files with OpenCV
    coffee_b64 = base64.b64encode(photo("coffee", 200))
    uploaded, status = client.upload_images(
        [{"_file": str(cat_file), "labels": [cat.id]}, {"_base64": coffee_b64, "labels": [cat.id, other.id]}]
    )
    assert status["status"] == "OK" and len(uploaded) == 2
    first = uploaded[0]
    assert first.img_width > 0 and first.img_path.startswith("http")

    image, _ = client.get_image(first.id)
    assert [label.name for label in image.get_labels()[0]] == ["cat"]
    image.add_label(other.id)
    image.invalidate()
    assert sorted(label.name for label in image.get_labels()[0]) == ["cat", "other"]
    image.detach_label(other.id)
    image.invalidate()
    assert [label.name for label in image.get_labels()[0]] == ["cat"]

    # The same bytes again: the client reads the existing image's id from the detail.
    again, status = client.upload_images([{"_base64": coffee_b64}])
    assert status["status"] == "exists" and again[0].id == uploaded[1].id

    # More than one page of a label's images, following `next` as the client does.
    extra = [{"_base64": base64.b64encode(data), "labels": [cat.id]} for data in distinct_photos(55)]
    client.upload_images(extra)
    label, _ = client.get_label(cat.id)
    assert label.images_count == 57
    page_one, next_page, info = label.get_training_images()
    assert info["count"] == 57 and len(page_one) == 50 and next_page
    page_two, last, _ = label.get_training_images(page_url=next_page)
    assert len(page_two) == 7 and last is None
    assert len({img.id for img in page_one} | {img.id for img in page_two}) == 57

    client.remove_image(first.id)
    assert client.get_image(first.id)[0] is None
    assert client.get_label(cat.id)[0].images_count == 56
    client.remove_label(other.id)
    assert client.get_label(other.id)[0] is None
    client.remove_task(task.id)
    assert client.get_task(task.id)[0] is None
