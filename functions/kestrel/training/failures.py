"""The training job's last word: why it failed, as the owner should read it (output/failure).

The exception itself (class, message, traceback) goes to the job's log, never to the owner."""

from __future__ import annotations

from kestrel.domain.training_rules import UNEXPECTED_FAILURE
from kestrel.ports.blobs import BlobNotFound
from kestrel.training.job import TrainingError
from kestrel.vision.imagefile import ImageRejected

IMAGE_DELETED = "an image was deleted while the model trained; train again"
IMAGE_UNREADABLE = "a training image could not be read ({detail}); delete or replace it, then train again"
OUT_OF_MEMORY = "the training ran out of memory; train again with fewer or smaller images, or ask the operator"


def reason_for(error: BaseException) -> str:
    """What the owner reads for ``error``: what went wrong and what to do."""
    if isinstance(error, TrainingError):
        return str(error)  # written for the owner
    if isinstance(error, BlobNotFound):
        return IMAGE_DELETED
    if isinstance(error, ImageRejected):
        return IMAGE_UNREADABLE.format(detail=str(error))
    if isinstance(error, MemoryError):
        return OUT_OF_MEMORY
    return UNEXPECTED_FAILURE
