"""The training flow on AWS, under moto: HTTP train request -> SQS -> launcher Lambda -> S3 manifest +
SageMaker CreateTrainingJob + SES mail -> EventBridge completion event -> finisher Lambda ->
Trained (or Failed) version, model files in S3, SES mail -> classify over HTTP.

The Lambda handlers are called with the events AWS would deliver: an SQS event built from the
message read back from moto's queue, and a "SageMaker Training Job State Change" event. The
model artefact is a real model.tar.gz from a real training (see ``tests.flow.artefacts``)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.sagemaker.exceptions import ResourceInUseException
from moto.sagemaker.models import SageMakerModelBackend

import kestrel.usecases.classify as classify_usecase
from kestrel.composition import build_ports
from kestrel.domain.entities import default_workspace_id
from kestrel.handlers import finisher, launcher
from kestrel.local.lambda_context import LocalLambdaContext
from kestrel.store.keys import image_blob
from kestrel.store.lifecycle import job_name
from tests.api.http import Api
from tests.conftest import (
    AWS_BUCKET,
    AWS_REGION,
    OWNER_A,
    RunningServer,
    aws_ports,
    local_settings,
    running_server,
)
from tests.flow.artefacts import (
    CARD_FILE,
    HEAD_FILE,
    MODEL_FILE,
    STARTED,
    TrainedArtefact,
    artefact_key,
    completed_event,
    failed_event,
    finish_mails,
    owner_id,
    sent_mails,
    trained_once,
)
from tests.flow.conftest import TrainableTask, make_trainable_task
from tests.photos import distinct_photos, photo

pytestmark = pytest.mark.aws

QUEUE_ARN = f"arn:aws:sqs:{AWS_REGION}:123456789012:kestrel-train"


@pytest.fixture(scope="module")
def artefact(tmp_path_factory: pytest.TempPathFactory) -> TrainedArtefact:
    return trained_once(tmp_path_factory)


@pytest.fixture
def aws_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RunningServer]:
    with aws_ports(monkeypatch, tmp_path / "data") as ports, running_server(ports, "aws") as server:
        yield server


@pytest.fixture
def job_names_created(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """SageMaker refuses a second CreateTrainingJob with a name in use (ResourceInUse) where moto 5
    would overwrite the job; make moto refuse too, and record every name asked for."""
    asked: list[str] = []
    create = SageMakerModelBackend.create_training_job

    def create_once(self: SageMakerModelBackend, training_job_name: str, **kwargs: Any) -> Any:
        asked.append(training_job_name)
        if training_job_name in self.training_jobs:
            raise ResourceInUseException(
                "Training job names must be unique within an AWS account and region, and a training job "
                f"with this name already exists ({self.training_jobs[training_job_name].arn})"
            )
        return create(self, training_job_name=training_job_name, **kwargs)

    monkeypatch.setattr(SageMakerModelBackend, "create_training_job", create_once)
    return asked


# -- delivering events ------------------------------------------------------------------------


def context(function: str) -> LocalLambdaContext:
    return LocalLambdaContext(
        function_name=function,
        memory_limit_in_mb=512,
        invoked_function_arn=f"arn:aws:lambda:{AWS_REGION}:123456789012:function:{function}",
        aws_request_id=str(uuid.uuid4()),
    )


def receive_all(server: RunningServer) -> list[dict[str, Any]]:
    """Every message waiting in the train queue, as SQS hands them to a Lambda poller."""
    sqs = boto3.client("sqs", region_name=AWS_REGION)
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=server.ports.settings.training.queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            return found
        found.extend(batch)


def sqs_record(message: dict[str, Any], body: str | None = None, message_id: str | None = None) -> dict[str, Any]:
    """The Lambda SQS event record for a message received from the queue."""
    return {
        "messageId": message_id or message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"] if body is None else body,
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": AWS_REGION,
    }


def run_launcher(*records: dict[str, Any]) -> dict[str, Any]:
    response = launcher.lambda_handler({"Records": list(records)}, context("kestrel-launcher"))
    return dict(response)


def run_finisher(event: dict[str, Any]) -> None:
    event = {**event, "account": "123456789012", "region": AWS_REGION, "id": str(uuid.uuid4())}
    event["resources"] = [
        f"arn:aws:sagemaker:{AWS_REGION}:123456789012:training-job/{event['detail']['TrainingJobName']}"
    ]
    finisher.lambda_handler(event, context("kestrel-finisher"))


@dataclass
class Launched:
    """A task with one version launched through SQS and the launcher Lambda."""

    trainable: TrainableTask
    model: dict[str, Any]
    message: dict[str, Any]

    @property
    def api(self) -> Api:
        return self.trainable.api

    @property
    def task_id(self) -> str:
        return str(self.trainable.task["id"])


def train_and_launch(server: RunningServer, trainable: TrainableTask) -> Launched:
    model = trainable.api.post(f"task/{trainable.task['id']}/train/", status=201)
    [message] = receive_all(server)
    assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}
    return Launched(trainable, model, message)


def deliver_artefact(server: RunningServer, model_id: str, archive: bytes) -> str:
    """Put ``archive`` where SageMaker leaves the job's model, as moto's job record says; its URI."""
    job = boto3.client("sagemaker", region_name=AWS_REGION).describe_training_job(TrainingJobName=job_name(model_id))
    uri = str(job["ModelArtifacts"]["S3ModelArtifacts"])
    assert uri == f"s3://{AWS_BUCKET}/{artefact_key(model_id)}"
    boto3.client("s3", region_name=AWS_REGION).put_object(Bucket=AWS_BUCKET, Key=artefact_key(model_id), Body=archive)
    return uri


def s3_object(key: str) -> bytes:
    body = boto3.client("s3", region_name=AWS_REGION).get_object(Bucket=AWS_BUCKET, Key=key)["Body"]
    return bytes(body.read())


def s3_keys(prefix: str) -> list[str]:
    listed = boto3.client("s3", region_name=AWS_REGION).list_objects_v2(Bucket=AWS_BUCKET, Prefix=prefix)
    return sorted(str(item["Key"]) for item in listed.get("Contents", []))


# -- launch -----------------------------------------------------------------------------------


def test_launcher_writes_the_manifest_starts_the_job_and_mails(aws_server: RunningServer) -> None:
    api = Api(aws_server.url, aws_server.token)
    trainable = make_trainable_task(api)
    cat, coffee = trainable.labels
    forced = [api.upload(data, labels=[cat["id"]], test_image=True) for data in distinct_photos(22, "chelsea")[20:]]
    environments: list[dict[str, str]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        environments.append(dict(params.get("Environment", {})))

    boto3._get_default_session().events.register("provide-client-params.sagemaker.CreateTrainingJob", capture)

    model = api.post(f"task/{trainable.task['id']}/train/", status=201)
    [message] = receive_all(aws_server)
    body = json.loads(message["Body"])
    owner = owner_id(aws_server)
    assert body == {
        "owner_id": owner,
        "task_id": trainable.task["id"],
        "model_id": model["id"],
        "version": 1,
        "workspace": default_workspace_id(owner),
    }
    assert api.get(f"model/{model['id']}")["train_status"] == "WAITING"

    assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}

    # The manifest: the task's labels in order, every image with its blob key, hash, labels and part.
    manifest = json.loads(s3_object(f"jobs/{model['id']}/manifest.json"))
    assert (manifest["model_id"], manifest["task_id"], manifest["version"]) == (model["id"], model["task"], 1)
    assert manifest["labels"] == [{"id": cat["id"], "name": "cat"}, {"id": coffee["id"], "name": "coffee"}]
    images = manifest["images"]
    assert len(images) == 42 and manifest["skipped_images"] == []
    for image in images:
        assert hashlib.sha256(s3_object(image["key"])).hexdigest() == image["sha256"]
        assert image["key"] == image_blob(owner, image["id"], f"{image['id']}.jpg")  # named after the image
    for label in (cat, coffee):
        mine = [image for image in images if image["labels"] == [label["id"]]]
        tests = sum(1 for image in mine if image["split"] == "test")
        assert len(mine) == (22 if label is cat else 20)
        assert abs(tests - 0.2 * len(mine)) <= 1, (label["name"], tests, len(mine))
    splits = {image["id"]: image["split"] for image in images}
    assert all(splits[image["id"]] == "test" for image in forced)

    # The job SageMaker was asked for, as moto recorded it.
    sagemaker = boto3.client("sagemaker", region_name=AWS_REGION)
    job = sagemaker.describe_training_job(TrainingJobName=f"kestrel-{model['id']}")
    settings = aws_server.ports.settings.training
    assert job["AlgorithmSpecification"]["TrainingImage"] == settings.image_uri
    assert job["RoleArn"] == settings.role_arn
    assert job["ResourceConfig"]["InstanceType"] == settings.instance_type == "ml.m5.large"
    assert job["ResourceConfig"]["InstanceCount"] == 1
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == settings.max_seconds == 3600
    [channel] = job["InputDataConfig"]
    assert channel["ChannelName"] == "manifest"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{AWS_BUCKET}/jobs/{model['id']}/manifest.json"
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{AWS_BUCKET}/jobs/{model['id']}/output"
    assert job["HyperParameters"] == {"task_type": "multi_class"}
    tags = {tag["Key"]: tag["Value"] for tag in sagemaker.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]}
    assert tags == {"kestrel:model": model["id"], "kestrel:task": trainable.task["id"], "kestrel:owner": owner}
    # The container finds the images and the embedding cache through the same composition root.
    assert environments == [{"KESTREL_RUNTIME": "aws", "KESTREL_TABLE": "kestrel-test", "KESTREL_BUCKET": AWS_BUCKET}]

    launched = api.get(f"model/{model['id']}")
    assert launched["train_status"] == "IN_TRAINING" and launched["started"]
    assert api.get(f"task/{trainable.task['id']}")["last_train_status"] == "IN_TRAINING"

    [mail] = sent_mails(aws_server)
    assert mail.to == OWNER_A and STARTED in mail.subject
    assert "'Cats and coffee'" in mail.subject and "version 1" in mail.subject
    assert "42 images" in mail.body and f"#/tasks/{trainable.task['id']}/models" in mail.body


def test_redelivered_request_starts_one_job_and_sends_one_mail(
    aws_server: RunningServer, job_names_created: list[str]
) -> None:
    trainable = make_trainable_task(Api(aws_server.url, aws_server.token))
    launched = train_and_launch(aws_server, trainable)
    sagemaker = boto3.client("sagemaker", region_name=AWS_REGION)
    name = f"kestrel-{launched.model['id']}"
    created = sagemaker.describe_training_job(TrainingJobName=name)["CreationTime"]

    # SQS delivers at least once: the same message again (a new receive, the same id and body).
    assert run_launcher(sqs_record(launched.message)) == {"batchItemFailures": []}

    assert job_names_created == [name, name]  # asked twice, refused the second time (ResourceInUse)
    assert [job["TrainingJobName"] for job in sagemaker.list_training_jobs()["TrainingJobSummaries"]] == [name]
    assert sagemaker.describe_training_job(TrainingJobName=name)["CreationTime"] == created
    assert len([mail for mail in sent_mails(aws_server) if STARTED in mail.subject]) == 1
    assert launched.api.get(f"model/{launched.model['id']}")["train_status"] == "IN_TRAINING"


def test_bad_records_fail_alone(aws_server: RunningServer) -> None:
    trainable = make_trainable_task(Api(aws_server.url, aws_server.token))
    model = trainable.api.post(f"task/{trainable.task['id']}/train/", status=201)
    [message] = receive_all(aws_server)
    not_json = sqs_record(message, body="{'model_id': " + model["id"], message_id=str(uuid.uuid4()))
    unknown_model = json.dumps({**json.loads(message["Body"]), "model_id": str(uuid.uuid4())})
    no_such_model = sqs_record(message, body=unknown_model, message_id=str(uuid.uuid4()))

    response = run_launcher(not_json, sqs_record(message), no_such_model)

    # Only the bad messages come back to the queue (and reach the dead letters after 3 receives).
    failed = [{"itemIdentifier": record["messageId"]} for record in (not_json, no_such_model)]
    assert response == {"batchItemFailures": failed}
    assert trainable.api.get(f"model/{model['id']}")["train_status"] == "IN_TRAINING"
    jobs = boto3.client("sagemaker", region_name=AWS_REGION).list_training_jobs()["TrainingJobSummaries"]
    assert [job["TrainingJobName"] for job in jobs] == [f"kestrel-{model['id']}"]
    assert len(sent_mails(aws_server)) == 1


# -- finish -----------------------------------------------------------------------------------


def test_completed_job_becomes_the_production_version_and_classifies(
    aws_server: RunningServer, artefact: TrainedArtefact, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Classify's head cache lives as long as the process. Make it under another gateway's ports
    # first (as when a local test classified earlier in this process): classify must still read
    # through the ports that are current when it loads a head, here S3 under moto.
    monkeypatch.setattr(classify_usecase, "_serving", None)
    with running_server(build_ports(local_settings(tmp_path / "local")), "local") as local:
        classify_usecase.serving(local.ports)

    launched = train_and_launch(aws_server, make_trainable_task(Api(aws_server.url, aws_server.token)))
    api, model_id, labels = launched.api, launched.model["id"], launched.trainable.labels
    archive = artefact.archive_for(launched.model, labels)
    deliver_artefact(aws_server, model_id, archive)

    run_finisher(completed_event(aws_server, model_id))

    model = api.get(f"model/{model_id}")
    assert model["train_status"] == "TRAINED" and model["trained"] and model["failure_reason"] is None
    assert model["accuracy"] == artefact.accuracy
    card = artefact.card_for(launched.model, labels)
    assert model["metrics"]["per_label"] == card["per_label"]
    assert model["metrics"]["confusion_matrix"]["labels"] == [label["id"] for label in labels]
    assert model["metrics"]["counts"]["images_train"] + model["metrics"]["counts"]["images_test"] == 40
    task = api.get(f"task/{launched.task_id}")
    assert (task["production_version"], task["last_train_status"]) == (1, "TRAINED")

    # The finisher keeps the model, its head and its card where classify and the export read them.
    prefix = f"models/{owner_id(aws_server)}/{model_id}/"
    assert s3_keys(prefix) == [prefix + CARD_FILE, prefix + HEAD_FILE, prefix + MODEL_FILE]
    assert s3_object(prefix + MODEL_FILE) == artefact.model
    assert s3_object(prefix + HEAD_FILE) == artefact.head_for(launched.model, labels)
    assert json.loads(s3_object(prefix + CARD_FILE)) == card

    [mail] = finish_mails(aws_server)
    accuracy = f"{100 * artefact.accuracy:.1f}%"
    assert mail.to == OWNER_A and "'Cats and coffee' version 1" in mail.subject and accuracy in mail.subject
    assert accuracy in mail.body and "now the task's production version" in mail.body

    records = [
        {"_base64": base64.b64encode(photo("chelsea", 300)).decode()},
        {"_base64": base64.b64encode(photo("coffee", 300)).decode()},
    ]
    answer = api.post("classify/", {"task_id": launched.task_id, "records": records})
    assert answer["version"] == 1 and answer["status"]["code"] == 200
    cat, coffee = labels
    assert [record["best_label"]["id"] for record in answer["records"]] == [cat["id"], coffee["id"]]


def test_failed_job_keeps_the_production_version_and_tells_why(
    aws_server: RunningServer, artefact: TrainedArtefact
) -> None:
    trainable = make_trainable_task(Api(aws_server.url, aws_server.token))
    first = train_and_launch(aws_server, trainable)
    deliver_artefact(aws_server, first.model["id"], artefact.archive_for(first.model, trainable.labels))
    run_finisher(completed_event(aws_server, first.model["id"]))
    second = train_and_launch(aws_server, trainable)
    assert second.model["version"] == 2

    run_finisher(failed_event(second.model["id"], "AlgorithmError: out of memory"))

    model = trainable.api.get(f"model/{second.model['id']}")
    assert model["train_status"] == "FAILED" and model["failure_reason"] == "out of memory"  # no class name
    assert model["accuracy"] is None
    task = trainable.api.get(f"task/{first.task_id}")
    assert (task["production_version"], task["last_train_status"]) == (1, "FAILED")
    assert s3_keys(f"models/{owner_id(aws_server)}/{second.model['id']}/") == []
    mail = finish_mails(aws_server)[-1]
    assert mail.to == OWNER_A and "failed" in mail.subject and "version 2" in mail.subject
    assert "'Cats and coffee'" in mail.subject
    assert "out of memory" in mail.body and "AlgorithmError" not in mail.body
    assert "production version is unchanged" in mail.body
