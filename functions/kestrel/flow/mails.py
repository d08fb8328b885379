"""The emails a task owner gets when training starts and when it ends."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from kestrel.domain.entities import Model, TrainStatus
from kestrel.domain.free_form import one_line
from kestrel.metrics import count
from kestrel.ports import Ports
from kestrel.ports.errors import Unavailable
from kestrel.ports.items import ItemStore
from kestrel.ports.mail import Mail, MailRefused
from kestrel.store.accounts import get_owner
from kestrel.store.lifecycle import (
    MAIL_FINISHED,
    MAIL_SENT,
    MAIL_STARTED,
    JobRef,
    owed_mails,
    record_mail_status,
    take_mail,
)
from kestrel.store.tasks import get_task
from kestrel.store.versions import get_model

logger = Logger(child=True)  # under the function that sends (POWERTOOLS_SERVICE_NAME)
# Powertools shares one metric set between instances: the launcher's and the finisher's
# ``log_metrics`` publish these with their own.
metrics = Metrics(namespace="Kestrel")
#: Counted once per mail that was not sent (refused, or dropped after its attempts).
METRIC_NOT_SENT = "MailNotSent"


def _name(model: Model) -> str:
    """The task's name as a mail shows it: one line, even for a name stored before names were checked."""
    return one_line(model.task_name, 80)


def _link(console_url: str, model: Model) -> str:
    return f"{console_url.rstrip('/')}/#/tasks/{model.task_id}/models"


def started(to: str, model: Model, images: int, console_url: str) -> Mail:
    return Mail(
        to=to,
        subject=f"Kestrel: training started for '{_name(model)}' version {model.version}",
        body=(
            f"Training of version {model.version} of your task '{_name(model)}' has started "
            f"on {images} images (status {TrainStatus.TRAINING.value}).\n\n"
            "You will get another email when it ends. Follow it here:\n"
            f"{_link(console_url, model)}\n"
        ),
    )


def finished(to: str, model: Model, console_url: str, deployed: bool) -> Mail:
    accuracy = f"{100 * (model.accuracy or 0.0):.1f}%"
    where = "It is now the task's production version." if deployed else "Deploy it from the console when ready."
    return Mail(
        to=to,
        subject=f"Kestrel: '{_name(model)}' version {model.version} trained, accuracy {accuracy}",
        body=(
            f"Version {model.version} of your task '{_name(model)}' finished training with "
            f"accuracy {accuracy} on its test images (status {TrainStatus.TRAINED.value}).\n{where}\n\n"
            f"The evaluation: {_link(console_url, model)}\n"
        ),
    )


def failed(to: str, model: Model, reason: str, console_url: str) -> Mail:
    return Mail(
        to=to,
        subject=f"Kestrel: training of '{_name(model)}' version {model.version} failed",
        body=(
            f"Training of version {model.version} of your task '{_name(model)}' failed "
            f"(status {TrainStatus.FAILED.value}):\n\n"
            f"    {reason}\n\nThe production version is unchanged. Details: {_link(console_url, model)}\n"
        ),
    )


# -- sending what is owed ---------------------------------------------------------------------


def send_owed(ports: Ports, ref: JobRef) -> dict[str, str]:
    """Send the mails the model's state changes owe its owner ("started", then "finished").

    Never raises: it runs after the state change it reports, and a mail must never fail the SQS
    record or the event that made the change, nor hold up the local worker. Each owed mail is
    claimed once (so two deliveries do not both send it), then tried up to ``mail.attempts``
    times with back-off; a permanent refusal is not tried again. What became of it is written on
    the version (``mail_status``), and a mail that was not sent is logged and counted
    (``MailNotSent``). Returns the status of each mail handled now, by kind."""
    try:
        owed = owed_mails(ports.items, ref)
    except Exception:
        logger.exception("the owed mails could not be read; none sent now", extra={"model_id": ref.model_id})
        _count_not_sent()
        return {}
    statuses: dict[str, str] = {}
    for kind in (MAIL_STARTED, MAIL_FINISHED):
        if kind in owed:
            status = _send_one(ports, ref, kind, owed[kind])
            if status is not None:
                statuses[kind] = status
    return statuses


def _send_one(ports: Ports, ref: JobRef, kind: str, value: dict[str, Any]) -> str | None:
    """Claim, send with bounded retries, and record one mail; None if another sender claimed it."""
    context = {"model_id": ref.model_id, "kind": kind}
    try:
        if not take_mail(ports.items, ref, kind):
            return None
    except Exception:
        logger.exception("an owed mail could not be claimed; not sent now", extra=context)
        _count_not_sent()
        return None
    status = _attempt(ports, ref, kind, value)
    if status != MAIL_SENT:
        _count_not_sent()
    try:
        record_mail_status(ports.items, ref, kind, status)
    except Exception:
        logger.exception("the mail status could not be recorded", extra={**context, "mail_status": status})
    return status


def _attempt(ports: Ports, ref: JobRef, kind: str, value: dict[str, Any]) -> str:
    """Build and send the mail, up to ``attempts`` times; "sent" or "not sent: <why>"."""
    settings = ports.settings.mail
    attempts = max(1, settings.attempts)
    context = {"model_id": ref.model_id, "kind": kind}
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            mail = _owed_mail(ports.items, ref, kind, value, settings.console_url)
            if mail is None:
                return "not sent: the version had not finished when its mail was due"
            ports.mailer.send(mail)
            return MAIL_SENT
        except MailRefused as refused:
            logger.warning("mail refused for good; not retried", extra={**context, "reason": refused.reason})
            return f"not sent: {refused.reason}"
        except Exception as error:  # transient or unknown: bounded retries, never raised
            last = error
            logger.warning("mail attempt failed", extra={**context, "attempt": attempt}, exc_info=True)
            if attempt < attempts:
                time.sleep(settings.retry_seconds * 2 ** (attempt - 1))
    logger.error("mail dropped after its attempts", extra={**context, "attempts": attempts})
    return f"not sent: {_transient_reason(last)} ({attempts} attempts); the training result is unaffected"


def _transient_reason(error: Exception | None) -> str:
    # The owner reads this: what was down, never an exception's internals.
    if isinstance(error, Unavailable):
        return f"{error.what} was unavailable"
    return "the mail could not be written or sent"


def _count_not_sent() -> None:
    count(metrics, METRIC_NOT_SENT)


def _owed_mail(items: ItemStore, ref: JobRef, kind: str, value: dict[str, Any], console_url: str) -> Mail | None:
    model = get_model(items, ref.space, ref.model_id)
    to = get_owner(items, ref.owner_id).email
    if kind == MAIL_STARTED:
        return started(to, model, int(value.get("images", 0)), console_url)
    if model.train_status == TrainStatus.TRAINED:
        deployed = get_task(items, ref.space, ref.task_id).production_version == model.version
        return finished(to, model, console_url, deployed)
    if model.train_status == TrainStatus.FAILED:
        return failed(to, model, model.failure_reason or "unknown reason", console_url)
    return None  # not finished (cannot happen: the finished mail is owed with the final state)
