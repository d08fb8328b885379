"""Where a model version's files live in the blob store."""

from __future__ import annotations

from kestrel.ports.blobs import BlobStore

MODEL_FILE = "model.onnx"  # backbone + head fused: the file the versions API exports
CARD_FILE = "card.json"  # labels in output order, thresholds, preprocessing, metrics
#: The head alone (kestrel.vision.heads), what classify reads beside the shared backbone.
#: Versions trained before it existed have none: classify reads their head out of MODEL_FILE.
HEAD_FILE = "head.npz"
#: The training images' descriptors (vision.descriptor_index), what similar/ searches. Versions
#: trained before similarity search existed have none.
DESCRIPTORS_FILE = "descriptors.npz"


def model_prefix(owner_id: str, model_id: str) -> str:
    return f"models/{owner_id}/{model_id}/"


def delete_model_files(blobs: BlobStore, owner_id: str, model_ids: list[str]) -> None:
    for model_id in model_ids:
        for key in list(blobs.list_keys(model_prefix(owner_id, model_id))):
            blobs.delete(key)
