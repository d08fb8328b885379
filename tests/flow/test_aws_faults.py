"""AWS faults, under moto: throttled and failing AWS calls, and what Kestrel does about them.

Faults are injected below Kestrel's code, at the HTTP layer of botocore: a ``before-send`` hook on
each of the clients Kestrel made answers chosen operations with the error AWS sends (DynamoDB's
ProvisionedThroughputExceededException, S3's 503 SlowDown, SQS's 503, SageMaker's
ThrottlingException, SES's Throttling) or raises a read timeout, for the first ``times`` attempts,
and moto answers the rest. So every layer above runs for real: botocore's retries and back-off,
the adapters, the flow, the Lambda handlers (called with the events AWS delivers).

What is proven:

1. Every client retries with back-off (standard mode, ``MAX_ATTEMPTS`` attempts) and Lambda-sized
   timeouts: k < MAX_ATTEMPTS throttled attempts cost k back-off sleeps, exponential, and the
   request succeeds (DynamoDB, S3, SQS over the api handler; SageMaker, SES in the launcher).
2. Retries exhausted: the API answers 503 with a ``detail`` and ``Retry-After`` (no 500, no
   traceback), and leaves nothing half-written (no version Waiting forever, no stray task status).
3. The launcher returns exactly the failed records of a batch (throttled past retries, bad body).
4. A request that keeps failing is received maxReceiveCount times (the stack's constant), then
   lands in the DLQ, and its version is marked Failed (with a mail) instead of Waiting forever.
5. The finisher raises on a transient failure (so Lambda runs the event again), and a redelivery
   after a partial success completes what was left undone (deploy, task status, mail), once.
   (A failing mail never fails a record or an event: see test_mail_refusals.py.)
"""

from __future__ import annotations

import ast
import base64
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from wsgiref.util import setup_testing_defaults

import boto3
import botocore.endpoint
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict
from botocore.exceptions import ReadTimeoutError
from botocore.retries.standard import ExponentialBackoff
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

from kestrel.adapters.aws_clients import (
    CONNECT_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    READ_TIMEOUT_SECONDS,
    RETRY_MODE,
)
from kestrel.config import TRAIN_MAX_RECEIVES
from kestrel.handlers import api as api_handler
from kestrel.local.events import event_from_wsgi
from kestrel.ports import Ports
from kestrel.ports.errors import Unavailable
from kestrel.store.keys import image_blob
from tests.api.http import Api
from tests.conftest import AWS_BUCKET, AWS_REGION, RunningServer, aws_ports, running_server
from tests.flow.artefacts import (
    STARTED,
    TrainedArtefact,
    completed_event,
    finish_mails,
    owner_id,
    sent_mails,
    trained_once,
)
from tests.flow.conftest import TrainableTask, make_trainable_task
from tests.flow.test_aws_flow import (
    context,
    deliver_artefact,
    job_names_created,  # noqa: F401 (a fixture)
    receive_all,
    run_finisher,
    run_launcher,
    s3_keys,
    sqs_record,
)
from tests.photos import distinct_photos

pytestmark = pytest.mark.aws

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


# -- injecting faults -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """An HTTP answer from an AWS service."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def json_error(code: str, message: str, status: int = 400) -> Answer:
    """An error of a JSON-protocol service (DynamoDB, SQS, SageMaker)."""
    body = json.dumps({"__type": code, "message": message}).encode()
    return Answer(status, body, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault"})


def xml_error(code: str, message: str, status: int) -> Answer:
    """An error of S3 (REST-XML)."""
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return Answer(status, body.encode(), {"Content-Type": "application/xml"})


def query_error(code: str, message: str, status: int = 400) -> Answer:
    """An error of a query-protocol service (SES)."""
    body = (
        '<ErrorResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>fault</RequestId></ErrorResponse>"
    )
    return Answer(status, body.encode(), {"Content-Type": "text/xml"})


DYNAMODB_THROTTLED = json_error(
    "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "The level of configured provisioned throughput for the table was exceeded.",
)
DYNAMODB_THROTTLING = json_error("com.amazon.coral.availability#ThrottlingException", "Rate exceeded")
S3_SLOW_DOWN = xml_error("SlowDown", "Please reduce your request rate.", 503)
SQS_UNAVAILABLE = json_error("com.amazonaws.sqs#ServiceUnavailable", "Service Unavailable", 503)
SAGEMAKER_THROTTLED = json_error("ThrottlingException", "Rate exceeded")
SES_THROTTLED = query_error("Throttling", "Maximum sending rate exceeded.")


def read_timeout() -> Exception:
    return ReadTimeoutError(endpoint_url=f"https://s3.{AWS_REGION}.amazonaws.com/")


@dataclass
class _Plan:
    operation: str  # "dynamodb.PutItem"
    answer: Answer | Callable[[], Exception]
    times: int
    when: Callable[[AWSPreparedRequest], bool] | None
    used: int = 0


class Faults:
    """Answers an operation's first ``times`` attempts (those ``when`` picks) with ``answer``, at
    the HTTP layer of Kestrel's own clients; counts every attempt sent, per operation.

    botocore calls every ``before-send`` handler and uses the first answer, so moto's handler
    would still run (and apply a write that was answered with an error): ``gate`` makes moto skip
    exactly the requests answered here. Both run in the thread that sends the request."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self._plans: list[_Plan] = []
        self._answered = threading.local()

    def watch(self, clients: dict[str, Any]) -> None:
        for client in clients.values():
            client.meta.events.register_first("before-send", self._before_send, unique_id="kestrel-test-faults")

    def gate(self, monkeypatch: pytest.MonkeyPatch) -> None:
        moto_answers = BotocoreStubber.__call__

        def unless_answered(stubber: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
            if getattr(self._answered, "flag", False):
                self._answered.flag = False
                return None
            return moto_answers(stubber, event_name, request, **kwargs)

        monkeypatch.setattr(BotocoreStubber, "__call__", unless_answered)

    def fail(
        self,
        operation: str,
        answer: Answer | Callable[[], Exception],
        times: int,
        when: Callable[[AWSPreparedRequest], bool] | None = None,
    ) -> _Plan:
        plan = _Plan(operation, answer, times, when)
        self._plans.append(plan)
        return plan

    def _before_send(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.removeprefix("before-send.")
        self.sent[operation] += 1
        for plan in self._plans:
            if plan.operation != operation or plan.used >= plan.times:
                continue
            if plan.when is not None and not plan.when(request):
                continue
            plan.used += 1
            if not isinstance(plan.answer, Answer):
                raise plan.answer()  # botocore stops at the exception: moto never sees the request
            answer = plan.answer
            self._answered.flag = True
            return AWSResponse(request.url, answer.status, HeadersDict(answer.headers), MockRawResponse(answer.body))
        return None


def body_has(*needles: str) -> Callable[[AWSPreparedRequest], bool]:
    """Picks the requests whose body mentions every one of ``needles``."""

    def picks(request: AWSPreparedRequest) -> bool:
        body = request.body
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
        return all(needle in text for needle in needles)

    return picks


def kestrel_clients(ports: Ports) -> dict[str, Any]:
    """The boto3 client behind each AWS port, as the composition root made it."""
    return {
        "dynamodb": ports.items._client,  # type: ignore[attr-defined]
        "s3": ports.blobs._client,  # type: ignore[attr-defined]
        "sqs": ports.queue._client,  # type: ignore[attr-defined]
        "sagemaker": ports.launcher._client,  # type: ignore[attr-defined]
        "ses": ports.mailer._client,  # type: ignore[attr-defined]
    }


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses botocore makes between attempts, recorded instead of slept. The jitter is pinned
    to its ceiling, so each pause is the exponential bound itself: base x 2^(attempt - 1), with
    base 1 s after throttling and 25-50 ms after other transient errors."""
    slept: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=slept.append))
    delay_amount = ExponentialBackoff.delay_amount

    def ceiling(self: ExponentialBackoff, context: Any) -> float:
        self._random = lambda: 1.0
        return float(delay_amount(self, context))

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", ceiling)
    return slept


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RunningServer]:
    with aws_ports(monkeypatch, tmp_path / "data") as ports, running_server(ports, "aws") as running:
        yield running


@pytest.fixture
def faults(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Faults:
    injected = Faults()
    injected.watch(kestrel_clients(server.ports))
    injected.gate(monkeypatch)
    return injected


@pytest.fixture(scope="module")
def artefact(tmp_path_factory: pytest.TempPathFactory) -> TrainedArtefact:
    return trained_once(tmp_path_factory)


# -- the api Lambda, called with API Gateway's event ------------------------------------------------


def api_event(method: str, path: str, owner: str, body: Any = None) -> dict[str, Any]:
    """The REST proxy event API Gateway hands the api function after the authorizer let ``owner`` in."""
    data = json.dumps(body).encode() if body is not None else b""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": f"/recognition/v2/{path.lstrip('/')}",
        "HTTP_HOST": "api.kestrel.example.com",
        "wsgi.url_scheme": "https",
    }
    if data:
        environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(data)))
    setup_testing_defaults(environ)
    event = event_from_wsgi(environ, data)
    event["requestContext"]["authorizer"] = {"principalId": owner, "owner_id": owner}
    return event


@dataclass
class Answered:
    status: int
    headers: dict[str, str]
    body: Any


def call_api(server: RunningServer, method: str, path: str, body: Any = None) -> Answered:
    event = api_event(method, path, owner_id(server), body)
    response = api_handler.lambda_handler(event, context("kestrel-api"))  # type: ignore[arg-type]
    headers = {name.lower(): str(value) for name, value in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(name.lower(), str(values[0]))
    text = response.get("body") or ""
    return Answered(int(response["statusCode"]), headers, json.loads(text) if text else None)


def assert_unavailable(answer: Answered) -> None:
    """A clean 503: a detail that says to retry, Retry-After, no internals."""
    assert answer.status == 503, answer
    assert set(answer.body) == {"detail"}
    assert "retry" in answer.body["detail"] or "again" in answer.body["detail"]
    assert int(answer.headers["retry-after"]) > 0
    for internal in ("Traceback", "botocore", "Exception", "arn:aws", AWS_BUCKET):
        assert internal not in answer.body["detail"]


def api(server: RunningServer) -> Api:
    return Api(server.url, server.token)


def trainable_task(server: RunningServer) -> TrainableTask:
    return make_trainable_task(api(server))


def sqs() -> Any:
    return boto3.client("sqs", region_name=AWS_REGION)


def sagemaker_jobs() -> list[str]:
    jobs = boto3.client("sagemaker", region_name=AWS_REGION).list_training_jobs()["TrainingJobSummaries"]
    return sorted(str(job["TrainingJobName"]) for job in jobs)


# == 1. every client retries with back-off ==========================================================


def test_every_client_kestrel_makes_has_the_retry_policy_and_lambda_timeouts(server: RunningServer) -> None:
    for service, client in kestrel_clients(server.ports).items():
        config = client.meta.config
        assert config.retries == {"mode": RETRY_MODE, "total_max_attempts": MAX_ATTEMPTS}, service
        assert RETRY_MODE in ("standard", "adaptive") and 2 <= MAX_ATTEMPTS <= 5
        assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)
        # Even all attempts timing out fit in the API function's 29 s (API Gateway's limit).
        assert MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) < 29, service
    assert kestrel_clients(server.ports)["s3"].meta.config.signature_version == "s3v4"  # presigning kept


def test_no_kestrel_module_makes_a_client_of_its_own() -> None:
    """One place makes boto3 clients (kestrel.adapters.aws_clients): a client made elsewhere would
    get botocore's defaults (legacy retries, 60 s timeouts) and raise raw throttling errors."""
    makers = {"client", "resource", "Session"}
    offenders = []
    for path in sorted((FUNCTIONS / "kestrel").rglob("*.py")):
        if path.name == "aws_clients.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in makers and getattr(node.value, "id", "") == "boto3":
                offenders.append(f"{path.relative_to(FUNCTIONS)}:{node.lineno}")
    assert offenders == []


def test_dynamodb_write_through_the_api_survives_throttling(
    server: RunningServer, faults: Faults, backoffs: list[float]
) -> None:
    faults.fail("dynamodb.PutItem", DYNAMODB_THROTTLED, times=2)

    answer = call_api(server, "POST", "label/", {"name": "heron", "type": "category"})

    assert answer.status == 201, answer
    assert faults.sent["dynamodb.PutItem"] == 3  # two throttled attempts, then the write
    assert backoffs == [1.0, 2.0]  # exponential, on the throttling scale
    assert [label["name"] for label in api(server).get("label/")["results"]] == ["heron"]


def test_s3_upload_through_the_api_survives_slow_down(
    server: RunningServer, faults: Faults, backoffs: list[float]
) -> None:
    label = api(server).create_label("heron")
    faults.fail("s3.PutObject", S3_SLOW_DOWN, times=2)
    data = distinct_photos(1, "chelsea")[0]

    answer = call_api(
        server, "POST", "training-image/", {"base64": base64.b64encode(data).decode(), "labels": [label["id"]]}
    )

    assert answer.status == 201, answer
    assert faults.sent["s3.PutObject"] == 4  # the image: 2 x SlowDown, then stored; the thumbnail
    assert backoffs == [1.0, 2.0]
    image = api(server).get(f"training-image/{answer.body['id']}")
    assert [entry["id"] for entry in image["labels"]] == [label["id"]]
    assert server.ports.blobs.get(image_blob(owner_id(server), image["id"])) == data


def test_train_request_survives_an_unavailable_queue(
    server: RunningServer, faults: Faults, backoffs: list[float]
) -> None:
    trainable = trainable_task(server)
    faults.fail("sqs.SendMessage", SQS_UNAVAILABLE, times=2)

    answer = call_api(server, "POST", f"task/{trainable.task['id']}/train/")

    assert answer.status == 201, answer
    assert faults.sent["sqs.SendMessage"] == 3
    assert backoffs == [0.05, 0.1]  # a 503 is transient, not throttling: the short scale
    [message] = receive_all(server)
    assert json.loads(message["Body"])["model_id"] == answer.body["id"]
    assert api(server).get(f"model/{answer.body['id']}")["train_status"] == "Waiting"


def test_launch_survives_throttled_sagemaker_and_ses(
    server: RunningServer, faults: Faults, backoffs: list[float]
) -> None:
    trainable = trainable_task(server)
    model = api(server).post(f"task/{trainable.task['id']}/train/", status=201)
    [message] = receive_all(server)
    faults.fail("sagemaker.CreateTrainingJob", SAGEMAKER_THROTTLED, times=2)
    faults.fail("ses.SendEmail", SES_THROTTLED, times=1)

    assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}

    assert (faults.sent["sagemaker.CreateTrainingJob"], faults.sent["ses.SendEmail"]) == (3, 2)
    assert backoffs == [1.0, 2.0, 1.0]  # SageMaker twice, then SES once
    assert sagemaker_jobs() == [f"kestrel-{model['id']}"]
    assert api(server).get(f"model/{model['id']}")["train_status"] == "Training"
    [mail] = sent_mails(server)
    assert STARTED in mail.subject


# == 2. retries exhausted: a clean 503, nothing half-written ======================================


def test_a_throttled_write_past_retries_answers_503_and_writes_nothing(
    server: RunningServer, faults: Faults, backoffs: list[float]
) -> None:
    faults.fail("dynamodb.PutItem", DYNAMODB_THROTTLED, times=MAX_ATTEMPTS)

    answer = call_api(server, "POST", "label/", {"name": "heron", "type": "category"})

    assert_unavailable(answer)
    assert "database" in answer.body["detail"]
    assert faults.sent["dynamodb.PutItem"] == MAX_ATTEMPTS
    assert len(backoffs) == MAX_ATTEMPTS - 1
    assert api(server).get("label/")["count"] == 0
    # Once DynamoDB accepts writes again, the same request simply works.
    assert call_api(server, "POST", "label/", {"name": "heron", "type": "category"}).status == 201


def test_an_upload_whose_record_cannot_be_written_answers_503_and_can_be_sent_again(
    server: RunningServer, faults: Faults, backoffs: list[float]
) -> None:
    label = api(server).create_label("heron")
    faults.fail("dynamodb.TransactWriteItems", DYNAMODB_THROTTLING, times=MAX_ATTEMPTS)
    body = {"base64": base64.b64encode(distinct_photos(1, "chelsea")[0]).decode(), "labels": [label["id"]]}

    assert_unavailable(call_api(server, "POST", "training-image/", body))

    assert api(server).get("training-image/")["count"] == 0
    assert api(server).get(f"label/{label['id']}")["images_count"] == 0
    # Not "a duplicate of image ...": no content-hash record was left behind.
    assert call_api(server, "POST", "training-image/", body).status == 201


def test_a_train_request_that_cannot_be_queued_answers_503_and_fails_its_version(
    server: RunningServer, faults: Faults, backoffs: list[float]
) -> None:
    trainable = trainable_task(server)
    task_id = trainable.task["id"]
    faults.fail("sqs.SendMessage", SQS_UNAVAILABLE, times=MAX_ATTEMPTS)

    answer = call_api(server, "POST", f"task/{task_id}/train/")

    assert_unavailable(answer)
    assert "could not be queued" in answer.body["detail"] and "version 1" in answer.body["detail"]
    assert receive_all(server) == []
    # Not Waiting forever for a launch that will never come: Failed, with the reason.
    [model] = api(server).get(f"model/?task={task_id}")["results"]
    assert (model["version"], model["train_status"]) == (1, "Failed")
    assert "could not be queued" in model["failure_reason"]
    task = api(server).get(f"task/{task_id}")
    assert (task["last_train_status"], task["production_version"]) == ("Failed", -1)
    assert sent_mails(server) == []  # the owner was told by the answer

    retried = call_api(server, "POST", f"task/{task_id}/train/")
    assert retried.status == 201 and retried.body["version"] == 2
    [message] = receive_all(server)
    assert json.loads(message["Body"])["model_id"] == retried.body["id"]


def test_a_train_request_that_cannot_be_recorded_answers_503_and_leaves_the_task_as_it_was(
    server: RunningServer, faults: Faults, backoffs: list[float]
) -> None:
    trainable = trainable_task(server)
    task_id = trainable.task["id"]
    before = api(server).get(f"task/{task_id}")
    faults.fail("dynamodb.TransactWriteItems", DYNAMODB_THROTTLING, times=MAX_ATTEMPTS)

    assert_unavailable(call_api(server, "POST", f"task/{task_id}/train/"))

    assert api(server).get(f"model/?task={task_id}")["count"] == 0
    assert receive_all(server) == []
    assert api(server).get(f"task/{task_id}")["last_train_status"] == before["last_train_status"]  # not "Waiting"
    retried = call_api(server, "POST", f"task/{task_id}/train/")
    assert retried.status == 201 and retried.body["train_status"] == "Waiting"


# == 3. partial batch failures ======================================================================


def test_launcher_returns_only_the_records_that_failed(
    server: RunningServer, faults: Faults, backoffs: list[float]
) -> None:
    trainable = trainable_task(server)
    first = api(server).post(f"task/{trainable.task['id']}/train/", status=201)
    second = api(server).post(f"task/{trainable.task['id']}/train/", status=201)
    messages = {json.loads(message["Body"])["model_id"]: message for message in receive_all(server)}
    good, throttled = sqs_record(messages[first["id"]]), sqs_record(messages[second["id"]])
    malformed = sqs_record(messages[first["id"]], body="train please", message_id=str(uuid.uuid4()))
    # SageMaker throttles every attempt to start the second version's job.
    faults.fail("sagemaker.CreateTrainingJob", SAGEMAKER_THROTTLED, times=100, when=body_has(f"kestrel-{second['id']}"))

    response = run_launcher(good, throttled, malformed)

    assert response == {
        "batchItemFailures": [{"itemIdentifier": throttled["messageId"]}, {"itemIdentifier": malformed["messageId"]}]
    }
    assert sagemaker_jobs() == [f"kestrel-{first['id']}"]
    assert api(server).get(f"model/{first['id']}")["train_status"] == "Training"
    assert api(server).get(f"model/{second['id']}")["train_status"] == "Waiting"  # SQS will deliver it again
    assert [STARTED in mail.subject for mail in sent_mails(server)] == [True]


def test_a_batch_whose_records_all_fail_lists_them_all(server: RunningServer) -> None:
    bad = {"messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": "{}", "attributes": {}}
    worse = {**bad, "messageId": str(uuid.uuid4()), "body": "not json"}
    records = [{**record, "eventSource": "aws:sqs", "awsRegion": AWS_REGION} for record in (bad, worse)]

    response = run_launcher(*records)

    assert response == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}


# == 4. dead letters after maxReceiveCount ========================================================


def test_a_request_that_keeps_failing_lands_in_the_dlq_and_fails_its_version(
    server: RunningServer, faults: Faults, backoffs: list[float]
) -> None:
    # The train queue as the stack makes it: a DLQ after maxReceiveCount receives (the constant
    # the stack uses; tests/infra checks the template against it). Visibility 0: a returned
    # message is visible again at once, as after its visibility timeout.
    queue_url = server.ports.settings.training.queue_url
    dlq_url = sqs().create_queue(QueueName="kestrel-train-dlq")["QueueUrl"]
    dlq_arn = sqs().get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": TRAIN_MAX_RECEIVES}
    sqs().set_queue_attributes(
        QueueUrl=queue_url, Attributes={"RedrivePolicy": json.dumps(redrive), "VisibilityTimeout": "0"}
    )
    trainable = trainable_task(server)
    model = api(server).post(f"task/{trainable.task['id']}/train/", status=201)
    faults.fail("sagemaker.CreateTrainingJob", SAGEMAKER_THROTTLED, times=10_000)

    receives: list[str] = []
    states: list[str] = []
    for _ in range(TRAIN_MAX_RECEIVES + 2):
        batch = sqs().receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
        if not batch.get("Messages"):
            break
        [message] = batch["Messages"]
        receives.append(message["Attributes"]["ApproximateReceiveCount"])
        response = run_launcher(sqs_record(message))
        assert response == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
        # Failed, not deleted: the Lambda poller leaves it to SQS, which shows it again.
        states.append(api(server).get(f"model/{model['id']}")["train_status"])

    assert receives == [str(n) for n in range(1, TRAIN_MAX_RECEIVES + 1)]
    [dead] = sqs().receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    assert json.loads(dead["Body"])["model_id"] == model["id"]
    assert faults.sent["sagemaker.CreateTrainingJob"] == TRAIN_MAX_RECEIVES * MAX_ATTEMPTS
    assert sagemaker_jobs() == []
    # Waiting while SQS may still deliver it; Failed (and the owner told) on the last receive.
    assert states == ["Waiting"] * (TRAIN_MAX_RECEIVES - 1) + ["Failed"]
    failed = api(server).get(f"model/{model['id']}")
    assert failed["failure_reason"] == (
        f"the training job could not be started after {TRAIN_MAX_RECEIVES} attempts "
        "(the training service was unavailable); request training again"
    )
    assert api(server).get(f"task/{trainable.task['id']}")["last_train_status"] == "Failed"
    [mail] = finish_mails(server)
    assert "failed" in mail.subject and "request training again" in mail.body


# == 5. the finisher: raise on transient failures, complete on redelivery =========================


def launched(server: RunningServer) -> tuple[TrainableTask, dict[str, Any]]:
    """A task with version 1 launched (Training), the "started" mail sent."""
    trainable = trainable_task(server)
    model = api(server).post(f"task/{trainable.task['id']}/train/", status=201)
    [message] = receive_all(server)
    assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}
    return trainable, model


def test_finisher_raises_when_the_artefact_cannot_be_read_then_the_retry_trains(
    server: RunningServer, faults: Faults, backoffs: list[float], artefact: TrainedArtefact
) -> None:
    trainable, model = launched(server)
    deliver_artefact(server, model["id"], artefact.archive_for(model, trainable.labels))
    faults.fail("s3.GetObject", read_timeout, times=MAX_ATTEMPTS)

    # Raised, not swallowed: Lambda runs the event again (twice), then the finisher's DLQ.
    with pytest.raises(Unavailable) as raised:
        run_finisher(completed_event(server, model["id"]))

    assert raised.value.what == "the file store"
    assert faults.sent["s3.GetObject"] == MAX_ATTEMPTS and len(backoffs) == MAX_ATTEMPTS - 1
    state = api(server).get(f"model/{model['id']}")
    assert state["train_status"] == "Training" and state["failure_reason"] is None  # not "bad artefact"
    assert s3_keys(f"models/{owner_id(server)}/") == [] and finish_mails(server) == []

    run_finisher(completed_event(server, model["id"]))  # Lambda's retry

    assert api(server).get(f"model/{model['id']}")["train_status"] == "Trained"
    assert api(server).get(f"task/{trainable.task['id']}")["production_version"] == 1
    assert len(finish_mails(server)) == 1


def test_finisher_raises_when_the_item_store_is_throttled(
    server: RunningServer, faults: Faults, backoffs: list[float], artefact: TrainedArtefact
) -> None:
    trainable, model = launched(server)
    deliver_artefact(server, model["id"], artefact.archive_for(model, trainable.labels))
    faults.fail("dynamodb.GetItem", DYNAMODB_THROTTLED, times=MAX_ATTEMPTS)

    with pytest.raises(Unavailable):
        run_finisher(completed_event(server, model["id"]))

    assert api(server).get(f"model/{model['id']}")["train_status"] == "Training"
    assert finish_mails(server) == []
    run_finisher(completed_event(server, model["id"]))
    assert api(server).get(f"model/{model['id']}")["train_status"] == "Trained"
    assert len(finish_mails(server)) == 1


# Each step the finisher takes after marking the version Trained, and a request that picks it.
UNDONE_STEPS = {
    "task status": ("dynamodb.UpdateItem", DYNAMODB_THROTTLED, body_has("last_train_status", "versions_created")),
    "deploy": ("dynamodb.UpdateItem", DYNAMODB_THROTTLED, body_has("production_version")),
}


@pytest.mark.parametrize("step", list(UNDONE_STEPS))
def test_a_redelivery_completes_what_a_failed_finisher_run_left_undone_once(
    server: RunningServer, faults: Faults, backoffs: list[float], artefact: TrainedArtefact, step: str
) -> None:
    trainable, model = launched(server)
    task_id = trainable.task["id"]
    deliver_artefact(server, model["id"], artefact.archive_for(model, trainable.labels))
    operation, answer, when = UNDONE_STEPS[step]
    faults.fail(operation, answer, times=MAX_ATTEMPTS, when=when)

    with pytest.raises(Unavailable):
        run_finisher(completed_event(server, model["id"]))

    # The version is Trained (its files first), but the failed step did not happen.
    assert api(server).get(f"model/{model['id']}")["train_status"] == "Trained"
    task = api(server).get(f"task/{task_id}")
    assert (task["last_train_status"] == "Trained") is (step != "task status")
    assert task["production_version"] == -1
    assert finish_mails(server) == []

    run_finisher(completed_event(server, model["id"]))  # Lambda's retry
    run_finisher(completed_event(server, model["id"]))  # and EventBridge's duplicate

    task = api(server).get(f"task/{task_id}")
    assert (task["last_train_status"], task["production_version"]) == ("Trained", 1)
    [mail] = finish_mails(server)
    assert "version 1" in mail.subject and "now the task's production version" in mail.body


def test_a_repeated_event_after_a_manual_change_of_production_deploys_nothing(
    server: RunningServer, artefact: TrainedArtefact
) -> None:
    """The deploy step runs once per version: a late duplicate does not undo the owner's choice."""
    trainable, first = launched(server)
    task_id = trainable.task["id"]
    deliver_artefact(server, first["id"], artefact.archive_for(first, trainable.labels))
    run_finisher(completed_event(server, first["id"]))
    api(server).ok("PATCH", f"task/{task_id}/", json={"auto_deploy": True})
    second = api(server).post(f"task/{task_id}/train/", status=201)
    [message] = receive_all(server)
    assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}
    deliver_artefact(server, second["id"], artefact.archive_for(second, trainable.labels))
    run_finisher(completed_event(server, second["id"]))
    assert api(server).get(f"task/{task_id}")["production_version"] == 2
    api(server).ok("PATCH", f"task/{task_id}/", json={"production_version": 1})

    run_finisher(completed_event(server, second["id"]))

    assert api(server).get(f"task/{task_id}")["production_version"] == 1
    assert len(finish_mails(server)) == 2
