"""The training job's entry point, following SageMaker's container conventions.

    <root>/input/data/manifest/manifest.json     the manifest (channel "manifest")
    <root>/input/config/hyperparameters.json     hyperparameters (all strings)
    <root>/model/                                model.onnx + card.json + head.npz + descriptors.npz
                                                 (SageMaker uploads it as model.tar.gz)
    <root>/output/failure                        the reason, when the job fails

``<root>`` is /opt/ml on SageMaker; the local worker sets KESTREL_SM_ROOT to a temporary folder.
Images and the embedding cache are read through the blob store (S3 on AWS, the data folder
locally), chosen by the same composition root as every handler."""

from __future__ import annotations

import json
import sys
import traceback

from kestrel.composition import build_ports
from kestrel.config import Settings, sagemaker_root
from kestrel.store.version_files import CARD_FILE, DESCRIPTORS_FILE, HEAD_FILE, MODEL_FILE
from kestrel.training.failures import reason_for
from kestrel.training.job import train


def _say(message: str) -> None:
    print(message, flush=True)


def main() -> int:
    root = sagemaker_root()
    try:
        manifest = json.loads((root / "input" / "data" / "manifest" / "manifest.json").read_text())
        ports = build_ports(Settings.from_env())
        result = train(manifest, ports.blobs, _say)
        model_dir = root / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / MODEL_FILE).write_bytes(result.model)
        (model_dir / HEAD_FILE).write_bytes(result.head)
        (model_dir / CARD_FILE).write_text(json.dumps(result.card, indent=1))
        (model_dir / DESCRIPTORS_FILE).write_bytes(result.descriptors)
    except Exception as error:  # noqa: BLE001 - the job's last word: SageMaker reads output/failure
        # The details go to the job's log (the worker and CloudWatch tag it with the job's name);
        # output/failure becomes the version's failure_reason, which the owner reads.
        traceback.print_exc()
        reason = reason_for(error)
        _say(f"training failed: {reason} (details: the traceback above)")
        failure = root / "output" / "failure"
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(reason[:1000])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
