"""The emails a task owner gets when training starts and when it ends."""

from __future__ import annotations

from kestrel.domain.entities import Model
from kestrel.ports.training import Mail


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
