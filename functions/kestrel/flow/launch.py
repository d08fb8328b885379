"""Step 1 of a training: a queued train request becomes a running job (launcher Lambda / worker)."""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger

from kestrel.domain.entities import TrainStatus, default_workspace_id
from kestrel.flow import mails
from kestrel.ports import Ports
from kestrel.ports.errors import Unavailable
from kestrel.ports.jobs import JobSpec, TrainRequest
from kestrel.store.keys import Space
from kestrel.store.lifecycle import JobRef, build_manifest, job_name, mark_failed, mark_training
from kestrel.store.versions import get_model

logger = Logger(service="kestrel-launcher", child=True)


def manifest_key(model_id: str) -> str:
    return f"jobs/{model_id}/manifest.json"


def output_prefix(model_id: str) -> str:
    return f"jobs/{model_id}/output"


def job_ref(request: TrainRequest) -> JobRef:
    owner_id = request.owner_id
    space = Space(owner_id, request.workspace_id or default_workspace_id(owner_id))
    return JobRef(space=space, task_id=request.task_id, model_id=request.model_id)


def launch(ports: Ports, request: TrainRequest) -> None:
    """Write the manifest, start the job (once), mark the model Training, then tell the owner.

    Safe to repeat: a redelivered message finds the job already started and the model already
    Training, and sends no second email. The mail comes last and cannot raise
    (``mails.send_owed``): a refused or failing mail is recorded on the version, never a reason
    for SQS to deliver the request again."""
    ref = job_ref(request)
    model = get_model(ports.items, ref.space, ref.model_id)
    if model.train_status not in (TrainStatus.WAITING, TrainStatus.TRAINING):
        logger.info("train request for a finished model ignored", extra={"model_id": ref.model_id})
        mails.send_owed(ports, ref)
        return
    manifest = build_manifest(ports.items, ref)
    if not manifest["images"]:
        mark_failed(ports.items, ref, "the task has no usable images (each needs exactly one of its labels)")
        mails.send_owed(ports, ref)
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
    mark_training(ports.items, ref, len(manifest["images"]))
    mails.send_owed(ports, ref)
    logger.info("training launched", extra={"model_id": ref.model_id, "new_job": started})


def give_up(ports: Ports, request: TrainRequest, error: BaseException, attempts: int) -> bool:
    """The train request's last delivery failed too (the queue moves it to its dead letters next):
    mark the version Failed with the reason and tell the owner, rather than leave it Waiting for
    a launch that will never come. False if the version had moved on (nothing to do)."""
    ref = job_ref(request)
    # The owner reads this: say what was down, never the internals of an unexpected error.
    cause = f"{error.what} was unavailable" if isinstance(error, Unavailable) else "an unexpected error"
    reason = f"the training job could not be started after {attempts} attempts ({cause}); request training again"
    failed = mark_failed(ports.items, ref, reason)
    mails.send_owed(ports, ref)
    return failed
