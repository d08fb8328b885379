"""DynamoDB's size limits, under moto, with data sized to cross each one.

SQLite has none of them, so the local tests cannot see them. moto enforces the three that
matter here as DynamoDB does: an item is at most 400 KB, a transaction holds at most 100 actions,
a Query page stops at 1 MB. For each: a direct test that the data crosses the limit (the service
refuses it, or pages), and a test that Kestrel stays within it (or refuses cleanly, with a 400).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from kestrel.adapters.dynamo_items import MAX_TRANSACTION_ITEMS, DynamoItemStore, create_table
from kestrel.domain.card_summary import MAX_SUMMARY_MISTAKES, summarise
from kestrel.ports.items import LIST, PK, SK, Put
from kestrel.store.images import MAX_LABELS_PER_IMAGE
from tests.api.http import Api
from tests.conftest import AWS_REGION, RunningServer
from tests.flow.artefacts import CARD_FILE, MODEL_FILE, TrainedArtefact, completed_event, owner_id, pack, trained_once
from tests.flow.test_aws_faults import api, server, trainable_task  # noqa: F401 (server is a fixture)
from tests.flow.test_aws_flow import deliver_artefact, receive_all, run_finisher, run_launcher, s3_keys, sqs_record
from tests.photos import distinct_photos

pytestmark = pytest.mark.aws

MISTAKES = 5_000
ITEM_LIMIT = 400 * 1024
PAGE_LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def artefact(tmp_path_factory: pytest.TempPathFactory) -> TrainedArtefact:
    return trained_once(tmp_path_factory)


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DynamoItemStore, Any]]:
    """A fresh item table under moto (its own page sizes: DynamoDB's 1 MB); the store and client."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=AWS_REGION)
        create_table(client, "kestrel-sizes")
        yield DynamoItemStore("kestrel-sizes", client), client


def card_with_mistakes(count: int, labels: list[str]) -> dict[str, Any]:
    """A multi_class card shaped as the training job writes it, with ``count`` mistakes."""
    return {
        "card_version": 1,
        "accuracy": 0.5,
        "labels": [{"id": label, "name": f"label {n}"} for n, label in enumerate(labels)],
        "per_label": {label: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": count} for label in labels},
        "confusion_matrix": {"labels": labels, "rows": [[count // 2, count // 2]] * len(labels)},
        "misclassified": [
            {
                "image_id": f"{n:08d}-0000-4000-8000-000000000000",
                "label": labels[n % 2],
                "predicted": labels[(n + 1) % 2],
                "prob": 0.6,
            }
            for n in range(count)
        ],
    }


def size_of(value: Any) -> int:
    return len(json.dumps(value).encode())


# == 400 KB items ====================================================================================


def test_a_card_with_5000_mistakes_crosses_the_item_limit_and_its_summary_does_not(
    table: tuple[DynamoItemStore, Any],
) -> None:
    store, _ = table
    card = card_with_mistakes(MISTAKES, ["a" * 36, "b" * 36])
    assert size_of(card) > ITEM_LIMIT  # sized to cross it

    with pytest.raises(ClientError) as refused:
        store.put({PK: "O#owner", SK: "V#whole", "metrics": card})
    assert "size" in str(refused.value).lower()

    summary = summarise(card)
    store.put({PK: "O#owner", SK: "V#summary", "metrics": summary})
    stored = store.get(("O#owner", "V#summary"))
    assert stored is not None
    assert len(stored["metrics"]["misclassified"]) == MAX_SUMMARY_MISTAKES
    assert stored["metrics"]["misclassified"] == card["misclassified"][:MAX_SUMMARY_MISTAKES]
    assert (stored["metrics"]["misclassified_total"], stored["metrics"]["truncated"]) == (MISTAKES, True)
    assert stored["metrics"]["per_label"] == card["per_label"]


def test_a_version_trained_with_5000_mistakes_keeps_a_summary_and_serves_the_whole_card(
    server: RunningServer,  # noqa: F811
    artefact: TrainedArtefact,
) -> None:
    trainable = trainable_task(server)
    model = api(server).post(f"task/{trainable.task['id']}/train/", status=201)
    [message] = receive_all(server)
    assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}
    card = artefact.card_for(model, trainable.labels)
    label_ids = [label["id"] for label in card["labels"]]
    card["misclassified"] = card_with_mistakes(MISTAKES, label_ids)["misclassified"]
    assert size_of(card) > ITEM_LIMIT
    deliver_artefact(server, model["id"], pack({MODEL_FILE: artefact.model, CARD_FILE: json.dumps(card).encode()}))

    run_finisher(completed_event(server, model["id"]))

    trained = api(server).get(f"model/{model['id']}")
    assert trained["train_status"] == "TRAINED"
    metrics = trained["metrics"]
    assert len(metrics["misclassified"]) == MAX_SUMMARY_MISTAKES
    assert (metrics["misclassified_total"], metrics["truncated"]) == (MISTAKES, True)
    assert metrics["per_label"] == card["per_label"] and metrics["accuracy"] == card["accuracy"]
    whole = api(server).get(f"model/{model['id']}/card/")
    assert whole == card  # read back from S3, every mistake
    assert api(server).get(f"model/{model['id']}/card")["misclassified"][-1] == card["misclassified"][-1]
    assert f"models/{owner_id(server)}/{model['id']}/card.json" in s3_keys(f"models/{owner_id(server)}/")


def test_the_card_of_a_version_that_is_not_trained_is_a_clean_400(server: RunningServer) -> None:  # noqa: F811
    trainable = trainable_task(server)
    model = api(server).post(f"task/{trainable.task['id']}/train/", status=201)
    answer = api(server).call("GET", f"model/{model['id']}/card/")
    assert answer.status_code == 400
    assert answer.json() == {"detail": "version 1 is WAITING; only a TRAINED version has files"}


# == 100-action transactions =========================================================================


def test_dynamodb_refuses_a_transaction_of_101_actions(table: tuple[DynamoItemStore, Any]) -> None:
    store, client = table
    puts = [
        {"Put": {"TableName": "kestrel-sizes", "Item": {PK: {"S": "p"}, SK: {"S": f"{n:03d}"}}}} for n in range(101)
    ]
    with pytest.raises(ClientError):
        client.transact_write_items(TransactItems=puts)  # the limit is real
    with pytest.raises(ValueError, match="at most 100"):
        store.transact([Put({PK: "p", SK: f"{n:03d}"}) for n in range(MAX_TRANSACTION_ITEMS + 1)])
    store.transact([Put({PK: "p", SK: f"{n:03d}"}) for n in range(MAX_TRANSACTION_ITEMS)])
    assert store.count("p") == MAX_TRANSACTION_ITEMS


def labels_of(api_: Api, count: int) -> list[str]:
    return [api_.create_label(f"tag {n}", "tag")["id"] for n in range(count)]


def test_an_upload_with_120_labels_is_refused_cleanly_and_stores_nothing(server: RunningServer) -> None:  # noqa: F811
    client = api(server)
    label_ids = labels_of(client, 120)
    [data] = distinct_photos(1)

    answer = client.call(
        "POST", "training-image/", json={"base64": base64.b64encode(data).decode(), "labels": label_ids}
    )

    assert answer.status_code == 400
    assert answer.json() == {
        "detail": f"an image may carry at most {MAX_LABELS_PER_IMAGE} labels, and this would give it 120; "
        "split the labels over several tasks, or use fewer per image"
    }
    assert client.get("training-image/")["count"] == 0
    assert s3_keys(f"images/{owner_id(server)}/") == []
    assert {client.get(f"label/{label_id}")["images_count"] for label_id in label_ids[:5]} == {0}
    # The same image with fewer labels is not taken for a duplicate: nothing of it was kept.
    assert client.upload(data, labels=label_ids[:2])["labels"]


def test_an_image_with_the_most_labels_is_stored_labelled_and_deleted_in_one_transaction_each(
    server: RunningServer,  # noqa: F811
) -> None:
    client = api(server)
    label_ids = labels_of(client, MAX_LABELS_PER_IMAGE + 1)
    first, second = distinct_photos(2)

    image = client.upload(first, labels=label_ids[:MAX_LABELS_PER_IMAGE])  # 2 + 2 x 48 = 98 actions

    assert len(image["labels"]) == MAX_LABELS_PER_IMAGE
    assert client.get(f"label/{label_ids[0]}")["images_count"] == 1
    refused = client.call("POST", f"training-image/{image['id']}/add-label/", json={"label_id": label_ids[-1]})
    assert refused.status_code == 400 and f"at most {MAX_LABELS_PER_IMAGE} labels" in refused.json()["detail"]
    client.ok("DELETE", f"training-image/{image['id']}/", 204)
    assert client.get(f"label/{label_ids[0]}")["images_count"] == 0
    assert client.upload(second, labels=label_ids[:3])["labels"]


# == 1 MB query pages ================================================================================


def test_a_query_over_more_than_1_mb_reads_every_page(table: tuple[DynamoItemStore, Any]) -> None:
    store, client = table
    queries: list[str] = []
    client.meta.events.register("before-call.dynamodb.Query", lambda **_: queries.append("q"))
    blob = "x" * 60_000
    for n in range(30):  # 30 x 60 KB = 1.8 MB in one partition
        store.put({PK: "O#big", SK: f"I#{n:03d}", LIST: "O#big", "ord": f"{n:03d}", "meta": blob})
    assert 30 * len(blob) > PAGE_LIMIT  # sized to cross it

    found = [item[SK] for item in store.query("O#big", "I#")]
    assert found == [f"I#{n:03d}" for n in range(30)]
    assert len(queries) >= 2  # DynamoDB (moto) stopped a page at 1 MB; the adapter asked again
    assert [item[SK] for item in store.query("O#big", index="ord", descending=True)][:2] == ["I#029", "I#028"]
    assert store.count("O#big", "I#") == 30
