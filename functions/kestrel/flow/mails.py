"""The emails a task owner gets when training starts and when it ends."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from kestrel.domain.entities import Model, TrainStatus
from kestrel.ports import Ports
from kestrel.ports.items import ItemStore
from kestrel.ports.mail import Mail
from kestrel.store.accounts import get_owner
from kestrel.store.lifecycle import MAIL_FINISHED, MAIL_STARTED, JobRef, owe_mail, owed_mails, take_mail
from kestrel.store.tasks import get_task
from kestrel.store.versions import get_model

logger = Logger(child=True)  # under the function that sends (POWERTOOLS_SERVICE_NAME)


def _link(console_url: str, model: Model) -> str:
    return f"{console_url.rstrip('/')}/#/tasks/{model.task_id}/models"


def started(to: str, model: Model, images: int, console_url: str) -> Mail:
    return Mail(
        to=to,
        subject=f"Kestrel: training started for '{model.task_name}' version {model.version}",
        body=(
            f"Training of version {model.version} of your task '{model.task_name}' has started "
            f"on {images} images.\n\nYou will get another email when it ends. Follow it here:\n"
            f"{_link(console_url, model)}\n"
        ),
    )


def finished(to: str, model: Model, console_url: str, deployed: bool) -> Mail:
    accuracy = f"{100 * (model.accuracy or 0.0):.1f}%"
    where = "It is now the task's production version." if deployed else "Deploy it from the console when ready."
    return Mail(
        to=to,
        subject=f"Kestrel: '{model.task_name}' version {model.version} trained, accuracy {accuracy}",
        body=(
            f"Version {model.version} of your task '{model.task_name}' finished training with "
            f"accuracy {accuracy} on its test images.\n{where}\n\nThe evaluation: {_link(console_url, model)}\n"
        ),
    )


def failed(to: str, model: Model, reason: str, console_url: str) -> Mail:
    return Mail(
        to=to,
        subject=f"Kestrel: training of '{model.task_name}' version {model.version} failed",
        body=(
            f"Training of version {model.version} of your task '{model.task_name}' failed:\n\n"
            f"    {reason}\n\nThe production version is unchanged. Details: {_link(console_url, model)}\n"
        ),
    )


# -- sending what is owed ---------------------------------------------------------------------


def send_owed(ports: Ports, ref: JobRef) -> list[str]:
    """Send the mails the model's state changes owe its owner ("started", then "finished"), each
    exactly once across deliveries: a claim picks one sender, and a send that fails gives the
    mail back before the error goes up, so the delivery that SQS or Lambda makes next sends it.
    Returns the kinds sent now."""
    items, console_url = ports.items, ports.settings.mail.console_url
    sent: list[str] = []
    owed = owed_mails(items, ref)
    for kind in (MAIL_STARTED, MAIL_FINISHED):
        if kind not in owed or not take_mail(items, ref, kind):
            continue
        try:
            mail = _owed_mail(items, ref, kind, owed[kind], console_url)
            if mail is not None:
                ports.mailer.send(mail)
        except Exception:
            try:
                owe_mail(items, ref, kind, owed[kind])
            except Exception:
                logger.exception("a mail could not be sent, nor kept for the next try", extra={"kind": kind})
            raise
        sent.append(kind)
    return sent


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
