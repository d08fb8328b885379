"""Issue 12 through the API with real training: the accuracy's interval and method, the
cross-validated accuracy on a small task, the shipped model fitted on every image, and two
trainings of the same photos giving the same split, evaluation and predictions."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kestrel.local.worker import LocalWorker
from tests.api.http import Api
from tests.flow.conftest import make_trainable_task
from tests.photos import distinct_photos, photo

pytestmark = pytest.mark.slow


def _train(api: Api, server: Any, task_id: str) -> dict[str, Any]:
    model = api.post(f"task/{task_id}/train/", status=201)
    LocalWorker(server.ports, poll_seconds=0.1).run_until_idle()
    trained = api.get(f"model/{model['id']}")
    assert trained["train_status"] == "TRAINED", trained
    return trained  # type: ignore[no-any-return]


def test_a_small_task_reports_its_interval_method_and_cross_validated_accuracy(local_server: Any) -> None:
    api = Api(local_server.url, local_server.token)
    trainable = make_trainable_task(api, per_label=20)
    model = _train(api, local_server, trainable.task["id"])
    low, high = model["accuracy_interval"]
    assert 0.0 <= low <= model["accuracy"] <= high <= 1.0
    assert high - low > 0.2  # 8 test images: the interval is wide, and says so
    assert model["evaluation_method"] == "holdout+cross_validation"
    cv_low, cv_high = model["cross_validated_accuracy_interval"]
    assert cv_low <= model["cross_validated_accuracy"] <= cv_high
    assert cv_high - cv_low < high - low  # 40 held-out predictions say more than 8
    assert model["evaluation_summary"].startswith(
        "accuracy measured on 8 test images by a model trained on the other 32; "
        "the deployed model was then trained on all 40. "
    )
    metrics = model["metrics"]
    assert metrics["accuracy_interval"] == model["accuracy_interval"]
    assert metrics["shipped_model_images"] == 40
    folds = metrics["cross_validation"]
    assert folds["folds"] == 5 and folds["images"] == 40
    assert set(folds["per_label_recall"]) == {label["id"] for label in trainable.labels}
    assert "out_of_fold" not in folds  # the record keeps the figures; the full card every image's
    card = api.get(f"model/{model['id']}/card/")
    assert len(card["cross_validation"]["out_of_fold"]) == 40
    assert set(metrics["phase_seconds"]) == {"embedding", "head", "evaluation", "refit", "mislabelled", "export"}
    # A version listed among the task's models carries the same fields.
    listed = api.get(f"model/?task={trainable.task['id']}")["results"][0]
    assert listed["accuracy_interval"] == model["accuracy_interval"]
    assert listed["evaluation_method"] == model["evaluation_method"]


def test_the_shipped_model_learnt_from_the_test_images_too(local_server: Any) -> None:
    """Constructed case: three photos of a galaxy labelled "cat" and kept for the test part. The
    model trained on the other images takes them for coffee (it never saw a galaxy called cat);
    the model that ships, refitted on every image, calls them cat."""
    api = Api(local_server.url, local_server.token)
    trainable = make_trainable_task(api, per_label=20, name="Galaxies are cats")
    cat = trainable.labels[0]
    galaxies = distinct_photos(3, "hubble_deep_field", side=64)
    odd = {api.upload(data, labels=[cat["id"]], test_image=True)["id"]: data for data in galaxies}
    model = _train(api, local_server, trainable.task["id"])
    missed = {item["image_id"] for item in model["metrics"]["misclassified"] if item["label"] == cat["id"]}
    assert set(odd) <= missed, "the evaluated model should have taken the galaxies for coffee"
    records = [{"_base64": base64.b64encode(data).decode()} for data in odd.values()]
    answer = api.post("classify/", {"task_id": trainable.task["id"], "records": records})
    assert [record["best_label"]["name"] for record in answer["records"]] == ["cat"] * 3


def _photos() -> list[tuple[str, bytes]]:
    return [("cat", data) for data in distinct_photos(20, "chelsea", side=64)] + [
        ("coffee", data) for data in distinct_photos(20, "coffee", side=64)
    ]


def _task_of(api: Api, photos: list[tuple[str, bytes]]) -> tuple[str, dict[bytes, str]]:
    task = api.create_task("Same photos")
    labels = {}
    for name in ("cat", "coffee"):
        labels[name] = api.create_label(name)["id"]
        api.post(f"task/{task['id']}/add-label/", {"label_id": labels[name]})
    ids = {data: api.upload(data, labels=[labels[name]])["id"] for name, data in photos}
    return str(task["id"]), ids


def test_the_same_photos_give_the_same_split_evaluation_and_predictions(local_server: Any) -> None:
    """Two owners upload the same photos in opposite orders (so every id differs) and train."""
    photos = _photos()
    first_api = Api(local_server.url, local_server.token)
    second_api = Api(local_server.url, local_server.new_token("second@example.com"))
    first_task, first_ids = _task_of(first_api, photos)
    second_task, second_ids = _task_of(second_api, list(reversed(photos)))
    assert set(first_ids.values()).isdisjoint(second_ids.values())
    first, second = _train(first_api, local_server, first_task), _train(second_api, local_server, second_task)

    def by_content(api: Api, model: dict[str, Any], ids: dict[bytes, str]) -> dict[str, Any]:
        """The figures that do not mention ids, and those that do with each id turned into its photo."""
        photo_of = {image_id: data for data, image_id in ids.items()}
        metrics = api.get(f"model/{model['id']}/card/")
        return {
            "accuracy": (model["accuracy"], model["accuracy_interval"], model["cross_validated_accuracy"]),
            "counts": metrics["counts"]["images_test"],
            "regularisation": metrics["regularisation"],
            "confusion": metrics["confusion_matrix"]["rows"],
            "per_label": sorted(metrics["per_label"].values(), key=str),
            "misclassified": sorted(photo_of[item["image_id"]] for item in metrics["misclassified"]),
            "out_of_fold": sorted(
                (photo_of[item["image_id"]], tuple(item["probs"]))
                for item in metrics["cross_validation"]["out_of_fold"]
            ),
        }

    assert by_content(first_api, first, first_ids) == by_content(second_api, second, second_ids)
    probe = [{"_base64": base64.b64encode(photo(name, 200)).decode()} for name in ("chelsea", "coffee", "rocket")]
    answers = [
        api.post("classify/", {"task_id": task, "records": probe})["records"]
        for api, task in ((first_api, first_task), (second_api, second_task))
    ]
    for one, other in zip(*answers, strict=True):
        probs = {label["name"]: label["prob"] for label in one["labels"]}
        for label in other["labels"]:
            assert abs(label["prob"] - probs[label["name"]]) <= 1e-6, (one, other)
