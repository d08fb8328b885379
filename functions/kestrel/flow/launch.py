"""Step 1 of a training: a queued train request becomes a running job (launcher Lambda / worker)."""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger

from kestrel.composition import Ports
from kestrel.domain.entities import TrainStatus
from kestrel.flow import mails
from kestrel.ports.training import JobSpec, TrainRequest
from kestrel.records.accounts import get_owner
from kestrel.records.models import get_model
from kestrel.records.training import JobRef, build_manifest, job_name, mark_failed, mark_training

logger = Logger(service="kestrel-launcher", child=True)


def manifest_key(model_id: str) -> str:
    return f"jobs/{model_id}/manifest.json"


def output_prefix(model_id: str) -> str:
    return f"jobs/{model_id}/output"


def launch(ports: Ports, request: TrainRequest) -> None:
    """Write the manifest, start the job (once), mark the model Training and tell the owner.

    Safe to repeat: a redelivered message finds the job already started and the model already
    Training, and sends no second email."""
    ref = JobRef(owner_id=request.owner_id, task_id=request.task_id, model_id=request.model_id)
    model = get_model(ports.items, ref.owner_id, ref.model_id)
    if model.train_status not in (TrainStatus.WAITING, TrainStatus.TRAINING):
        logger.info("train request for a finished model ignored", extra={"model_id": ref.model_id})
        return
    manifest = build_manifest(ports.items, ref)
    if not manifest["images"]:
        if mark_failed(ports.items, ref, "the task has no usable images (each needs exactly one of its labels)"):
            owner = get_owner(ports.items, ref.owner_id)
            ports.mailer.send(mails.failed(owner.email, model, "no usable images", ports.settings.mail.console_url))
        return
    ports.blobs.put(manifest_key(ref.model_id), json.dumps(manifest).encode(), "application/json")
    spec = JobSpec(
        job_name=job_name(ref.model_id),
        manifest_key=manifest_key(ref.model_id),
        output_prefix=output_prefix(ref.model_id),
        hyperparameters={"task_type": manifest["task_type"]},
        tags={"kestrel:model": ref.model_id, "kestrel:task": ref.task_id, "kestrel:owner": ref.owner_id},
    )
    started = ports.launcher.launch(spec)
    if mark_training(ports.items, ref):
        owner = get_owner(ports.items, ref.owner_id)
        ports.mailer.send(mails.started(owner.email, model, len(manifest["images"]), ports.settings.mail.console_url))
    logger.info("training launched", extra={"model_id": ref.model_id, "new_job": started})
