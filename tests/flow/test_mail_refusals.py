"""Mail never decides a training's fate (under moto, through the launcher and finisher Lambdas).

SES refuses mail for good in the sandbox (an unverified recipient), before the sender is
verified, or while sending is paused; it throttles for a while under load. Either way the version
still goes Waiting -> Training -> Trained, every SQS record is acknowledged (none reaches the
dead letters) and every EventBridge event is handled (the finisher does not raise); what became of
each mail is written on the version as ``mail_status``. A permanent refusal is tried once; a
transient failure a bounded number of times, with back-off.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from kestrel.adapters.aws_clients import MAX_ATTEMPTS
from kestrel.adapters.ses_mail import REFUSALS
from kestrel.config import TRAIN_MAX_RECEIVES, MailSettings
from kestrel.flow import mails
from kestrel.ports.mail import Mail
from tests.conftest import AWS_MAIL_FROM, AWS_REGION, RunningServer
from tests.flow.artefacts import STARTED, TrainedArtefact, completed_event, finish_mails, sent_mails, trained_once
from tests.flow.test_aws_faults import (
    SES_THROTTLED,
    Faults,
    api,
    backoffs,  # noqa: F401 (a fixture)
    faults,  # noqa: F401 (a fixture)
    query_error,
    server,  # noqa: F401 (a fixture)
    trainable_task,
)
from tests.flow.test_aws_flow import deliver_artefact, receive_all, run_finisher, run_launcher, sqs_record

pytestmark = pytest.mark.aws

ATTEMPTS = MailSettings().attempts


@pytest.fixture(scope="module")
def artefact(tmp_path_factory: pytest.TempPathFactory) -> TrainedArtefact:
    return trained_once(tmp_path_factory)


@pytest.fixture
def mail_pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the flow makes between its own mail attempts, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(mails, "time", SimpleNamespace(sleep=slept.append))
    return slept


@pytest.fixture
def dlq(server: RunningServer) -> str:  # noqa: F811 (the server fixture)
    """The train queue as the stack makes it: a DLQ after TRAIN_MAX_RECEIVES receives; a failed
    message is visible again at once. Returns the DLQ's URL."""
    sqs = boto3.client("sqs", region_name=AWS_REGION)
    dlq_url = sqs.create_queue(QueueName="kestrel-train-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": arn, "maxReceiveCount": TRAIN_MAX_RECEIVES}
    sqs.set_queue_attributes(
        QueueUrl=server.ports.settings.training.queue_url,
        Attributes={"RedrivePolicy": json.dumps(redrive), "VisibilityTimeout": "0"},
    )
    return str(dlq_url)


def drain_like_the_lambda_poller(running: RunningServer) -> list[dict[str, Any]]:
    """Receive and hand each message to the launcher as Lambda's SQS poller does: a record the
    launcher acknowledges is deleted, a failed one comes back (then goes to the DLQ). Returns
    every launcher response."""
    sqs = boto3.client("sqs", region_name=AWS_REGION)
    queue_url = running.ports.settings.training.queue_url
    responses = []
    for _ in range(TRAIN_MAX_RECEIVES + 2):
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
        if not batch.get("Messages"):
            break
        records = [sqs_record(message) for message in batch["Messages"]]
        response = run_launcher(*records)
        responses.append(response)
        failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
        for message in batch["Messages"]:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return responses


def dead_letters(dlq_url: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs", region_name=AWS_REGION).receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10)
    return list(messages.get("Messages", []))


def ses_refusal(code: str) -> Any:
    return query_error(code, f"{code}: refused by the test", 400)


# == permanent refusals: one test per SES error code ================================================


@pytest.mark.parametrize("code", sorted(REFUSALS))
def test_a_refused_mail_at_start_and_at_finish_leaves_the_version_trained_and_says_why(
    server: RunningServer,  # noqa: F811
    faults: Faults,  # noqa: F811
    dlq: str,
    artefact: TrainedArtefact,
    mail_pauses: list[float],
    code: str,
) -> None:
    trainable = trainable_task(server)
    model = api(server).post(f"task/{trainable.task['id']}/train/", status=201)
    faults.fail("ses.SendEmail", ses_refusal(code), times=10_000)

    responses = drain_like_the_lambda_poller(server)

    assert responses == [{"batchItemFailures": []}]  # acknowledged on the first delivery
    assert dead_letters(dlq) == []
    launched = api(server).get(f"model/{model['id']}")
    assert launched["train_status"] == "Training"
    assert launched["mail_status"]["started"].startswith("not sent: ")
    assert faults.sent["ses.SendEmail"] == 1  # permanent: tried once, by botocore and by Kestrel
    assert mail_pauses == []

    deliver_artefact(server, model["id"], artefact.archive_for(model, trainable.labels))
    run_finisher(completed_event(server, model["id"]))  # does not raise: no retry, no DLQ

    trained = api(server).get(f"model/{model['id']}")
    assert trained["train_status"] == "Trained"
    assert api(server).get(f"task/{trainable.task['id']}")["production_version"] == 1
    for kind in ("started", "finished"):
        status = trained["mail_status"][kind]
        assert status == f"not sent: {REFUSALS[code].format(message=f'{code}: refused by the test')}"
    assert faults.sent["ses.SendEmail"] == 2 and sent_mails(server) == []
    assert "Traceback" not in json.dumps(trained["mail_status"])


def test_an_unverified_sender_is_refused_by_ses_itself_and_the_training_goes_on(
    server: RunningServer,  # noqa: F811
    artefact: TrainedArtefact,
    mail_pauses: list[float],
) -> None:
    """No fault injected: moto's SES refuses a sender that is not verified, as SES does."""
    boto3.client("ses", region_name=AWS_REGION).delete_identity(Identity=AWS_MAIL_FROM)
    trainable = trainable_task(server)
    model = api(server).post(f"task/{trainable.task['id']}/train/", status=201)
    [message] = receive_all(server)

    assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}
    deliver_artefact(server, model["id"], artefact.archive_for(model, trainable.labels))
    run_finisher(completed_event(server, model["id"]))

    trained = api(server).get(f"model/{model['id']}")
    assert trained["train_status"] == "Trained"
    assert set(trained["mail_status"]) == {"started", "finished"}
    for status in trained["mail_status"].values():
        assert status.startswith("not sent: SES rejected the mail (") and "sandbox" in status
    assert sent_mails(server) == [] and mail_pauses == []


def test_a_refused_failure_mail_leaves_the_version_failed_with_its_reason(
    server: RunningServer,  # noqa: F811
    faults: Faults,  # noqa: F811
    mail_pauses: list[float],
) -> None:
    from tests.flow.artefacts import failed_event

    trainable = trainable_task(server)
    model = api(server).post(f"task/{trainable.task['id']}/train/", status=201)
    [message] = receive_all(server)
    assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}
    faults.fail("ses.SendEmail", ses_refusal("MessageRejected"), times=10_000)

    run_finisher(failed_event(model["id"], "AlgorithmError: out of memory"))

    failed = api(server).get(f"model/{model['id']}")
    assert failed["train_status"] == "Failed" and "out of memory" in failed["failure_reason"]
    assert failed["mail_status"]["started"] == "sent"
    assert failed["mail_status"]["finished"].startswith("not sent: SES rejected the mail")


# == transient failures: bounded retries with back-off, then recorded ===============================


def test_a_throttled_mail_is_retried_with_back_off_then_recorded_and_the_record_acknowledged(
    server: RunningServer,  # noqa: F811
    faults: Faults,  # noqa: F811
    backoffs: list[float],  # noqa: F811
    mail_pauses: list[float],
    dlq: str,
) -> None:
    trainable = trainable_task(server)
    model = api(server).post(f"task/{trainable.task['id']}/train/", status=201)
    faults.fail("ses.SendEmail", SES_THROTTLED, times=10_000)

    assert drain_like_the_lambda_poller(server) == [{"batchItemFailures": []}]

    assert dead_letters(dlq) == []
    assert faults.sent["ses.SendEmail"] == ATTEMPTS * MAX_ATTEMPTS  # botocore's retries, each time
    retry = MailSettings().retry_seconds
    assert mail_pauses == [retry * 2**n for n in range(ATTEMPTS - 1)]  # Kestrel's back-off, doubling
    launched = api(server).get(f"model/{model['id']}")
    assert launched["train_status"] == "Training"
    assert launched["mail_status"] == {
        "started": f"not sent: the mail service was unavailable ({ATTEMPTS} attempts); "
        "the training result is unaffected"
    }
    assert sent_mails(server) == []


def test_a_mail_throttled_once_is_sent_by_the_next_attempt(
    server: RunningServer,  # noqa: F811
    faults: Faults,  # noqa: F811
    backoffs: list[float],  # noqa: F811
    mail_pauses: list[float],
) -> None:
    trainable = trainable_task(server)
    model = api(server).post(f"task/{trainable.task['id']}/train/", status=201)
    [message] = receive_all(server)
    faults.fail("ses.SendEmail", SES_THROTTLED, times=MAX_ATTEMPTS)  # one whole Kestrel attempt

    assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}
    assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}  # a duplicate delivery

    assert api(server).get(f"model/{model['id']}")["mail_status"] == {"started": "sent"}
    assert [STARTED in mail.subject for mail in sent_mails(server)] == [True]  # once
    assert mail_pauses == [MailSettings().retry_seconds]


def test_a_finisher_whose_mail_keeps_failing_completes_the_training_and_raises_nothing(
    server: RunningServer,  # noqa: F811
    faults: Faults,  # noqa: F811
    backoffs: list[float],  # noqa: F811
    mail_pauses: list[float],
    artefact: TrainedArtefact,
) -> None:
    trainable = trainable_task(server)
    model = api(server).post(f"task/{trainable.task['id']}/train/", status=201)
    [message] = receive_all(server)
    assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}
    deliver_artefact(server, model["id"], artefact.archive_for(model, trainable.labels))
    faults.fail("ses.SendEmail", SES_THROTTLED, times=10_000)

    run_finisher(completed_event(server, model["id"]))
    run_finisher(completed_event(server, model["id"]))  # EventBridge's duplicate: nothing more

    trained = api(server).get(f"model/{model['id']}")
    assert trained["train_status"] == "Trained"
    task = api(server).get(f"task/{trainable.task['id']}")
    assert (task["last_train_status"], task["production_version"]) == ("Trained", 1)
    assert trained["mail_status"]["started"] == "sent"
    assert trained["mail_status"]["finished"].startswith("not sent: the mail service was unavailable")
    assert faults.sent["ses.SendEmail"] == 1 + ATTEMPTS * MAX_ATTEMPTS and finish_mails(server) == []


def test_any_error_of_the_mail_port_is_retried_a_bounded_number_of_times_and_not_raised(
    server: RunningServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    mail_pauses: list[float],
) -> None:
    trainable = trainable_task(server)
    model = api(server).post(f"task/{trainable.task['id']}/train/", status=201)
    [message] = receive_all(server)
    calls: list[Mail] = []

    def broken(mail: Mail) -> None:
        calls.append(mail)
        raise RuntimeError("SES configuration set deleted")

    monkeypatch.setattr(server.ports.mailer, "send", broken)
    assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}
    assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}

    assert len(calls) == ATTEMPTS  # the duplicate delivery found nothing owed
    status = api(server).get(f"model/{model['id']}")["mail_status"]["started"]
    assert status == f"not sent: the mail could not be written or sent ({ATTEMPTS} attempts); " + (
        "the training result is unaffected"
    )
    assert "RuntimeError" not in status and "configuration set deleted" not in status
