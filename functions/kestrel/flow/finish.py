"""Step 2 of a training: the job's completion event becomes a TRAINED or FAILED version."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any
from urllib.parse import urlparse

from aws_lambda_powertools import Logger

from kestrel.domain.card_summary import summarise
from kestrel.domain.entities import TrainStatus
from kestrel.domain.errors import NotFound
from kestrel.flow import mails
from kestrel.flow.reasons import for_people
from kestrel.ports import Ports
from kestrel.ports.blobs import BlobNotFound
from kestrel.store.lifecycle import JobRef, find_job, mark_failed, mark_trained, model_id_of_job
from kestrel.store.version_files import CARD_FILE, DESCRIPTORS_FILE, HEAD_FILE, MODEL_FILE, model_prefix

logger = Logger(service="kestrel-finisher", child=True)

_MAX_MEMBER_BYTES = 200 * 1024 * 1024


class BadArtefact(Exception):
    """The job's output is not what a Kestrel training job writes."""


def read_artefact(data: bytes) -> dict[str, bytes]:
    """model.onnx, card.json and head.npz from the job's model.tar.gz, and descriptors.npz when
    the job wrote one (nothing else is read). head.npz and descriptors.npz are optional: jobs of
    older releases wrote neither; classify reads such a version's head out of model.onnx, and
    similarity search says to train again."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                name = member.name.removeprefix("./")
                if name == DESCRIPTORS_FILE and member.size > _MAX_MEMBER_BYTES:
                    # 5 KB an image: over ~40,000 images. The version still ships, unsearchable.
                    logger.warning("descriptors over the member bound: not kept", extra={"bytes": member.size})
                if (
                    name in (MODEL_FILE, CARD_FILE, HEAD_FILE, DESCRIPTORS_FILE)
                    and member.isfile()
                    and member.size <= _MAX_MEMBER_BYTES
                ):
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        found[name] = extracted.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise BadArtefact(f"the model archive cannot be read: {error}") from None
    missing = {MODEL_FILE, CARD_FILE} - set(found)
    if missing:
        raise BadArtefact(f"the model archive lacks {', '.join(sorted(missing))}")
    return found


def blob_key_of(uri: str) -> str:
    """s3://bucket/key -> key (the blob store is the bucket)."""
    return urlparse(uri).path.lstrip("/")


def finish(ports: Ports, event: dict[str, Any]) -> TrainStatus | None:
    """Handle one "SageMaker Training Job State Change" event (EventBridge's shape).

    Returns the state the model reached (TRAINED or FAILED), or None when the event changed
    nothing (not Kestrel's job, an unknown model, or a repeated event).

    A transient failure of the blob store or the database raises, so that Lambda runs the event
    again; every step is safe to repeat, and a repeat completes what the failed run left undone
    (the files, the task's status, the deploy), once. The mail comes after the state change and
    cannot raise (``mails.send_owed``): it never sends an event to the dead letters."""
    detail = event.get("detail") or {}
    name = str(detail.get("TrainingJobName", ""))
    status = str(detail.get("TrainingJobStatus", ""))
    model_id = model_id_of_job(name)
    if model_id is None or status not in ("Completed", "Failed", "Stopped"):
        logger.info("event ignored", extra={"job": name, "status": status})
        return None
    try:
        ref = find_job(ports.items, model_id)
    except NotFound:
        logger.warning("event for an unknown job", extra={"job": name})
        return None
    outcome: TrainStatus | None
    if status == "Completed":
        try:
            outcome = TrainStatus.TRAINED if _complete(ports, ref, detail) else None
        except BadArtefact as error:
            logger.error(
                "the job's output is unusable", extra={"job": name, "model_id": ref.model_id, "error": str(error)}
            )
            reason = "the training job's output could not be read; train again"
            outcome = TrainStatus.FAILED if mark_failed(ports.items, ref, reason) else None
    else:
        raw = str(detail.get("FailureReason") or f"the training job was {status.lower()}")
        reason = for_people(raw)
        if reason != raw:  # the owner reads the plain version; the log keeps what the service said
            logger.warning("training failure reason", extra={"job": name, "model_id": ref.model_id, "raw": raw})
        outcome = TrainStatus.FAILED if mark_failed(ports.items, ref, reason) else None
    if outcome is None:
        logger.info("repeated event: nothing changed", extra={"model_id": ref.model_id})
    mails.send_owed(ports, ref)
    return outcome


def _complete(ports: Ports, ref: JobRef, detail: dict[str, Any]) -> bool:
    uri = str((detail.get("ModelArtifacts") or {}).get("S3ModelArtifacts", ""))
    try:
        data = ports.blobs.get(blob_key_of(uri))
    except BlobNotFound:
        raise BadArtefact(f"the job's model archive is missing: {uri}") from None
    files = read_artefact(data)
    try:
        card = json.loads(files[CARD_FILE])
        accuracy = float(card["accuracy"])
    except (ValueError, KeyError, TypeError) as error:
        raise BadArtefact(f"card.json is not a Kestrel model card: {error!r}") from None
    prefix = model_prefix(ref.owner_id, ref.model_id)
    # Files first: a model marked Trained can always be loaded.
    ports.blobs.put(prefix + MODEL_FILE, files[MODEL_FILE], "application/octet-stream")
    if HEAD_FILE in files:
        ports.blobs.put(prefix + HEAD_FILE, files[HEAD_FILE], "application/octet-stream")
    ports.blobs.put(prefix + CARD_FILE, files[CARD_FILE], "application/json")
    if DESCRIPTORS_FILE in files:
        ports.blobs.put(prefix + DESCRIPTORS_FILE, files[DESCRIPTORS_FILE], "application/octet-stream")
    # The record keeps a bounded summary (DynamoDB's 400 KB item limit); the full card is the
    # file just written, served by GET model/{id}/card/.
    return mark_trained(ports.items, ref, accuracy, summarise(card))
