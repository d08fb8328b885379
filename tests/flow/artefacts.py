"""Real training artefacts for the flow tests, and the helpers that drive the flow by hand.

``train_artefact`` runs the training job's own entry point (``kestrel.handlers.training_job.main``, the
program SageMaker runs) in SageMaker's directory layout on a real local task (2 labels x 20
photos), and packs ``/opt/ml/model`` the way the worker (and SageMaker) does. It takes a few
seconds, so it runs once per test process (the first module that asks) and the bytes are reused.

``TrainedArtefact.archive_for(model, labels)`` gives that real ``model.tar.gz`` for another model
version: the ONNX file is unchanged (it knows label positions, not ids), the card is the real
card with its identifiers (model, task, labels, version, task name) swapped for the target's, and
the head file is the real head with the target's label ids, so classify answers with the target
task's label ids. Accuracy and metrics stay the real ones. ``with_head=False`` leaves the head
file out, as a job of a release before head files did. The descriptors are left out (they name
the source task's images; an archive without them is what jobs of releases before similarity
search wrote).
"""

from __future__ import annotations

import email
import gzip
import io
import json
import tarfile
import tempfile
import time
from dataclasses import dataclass, field, replace
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from kestrel.composition import build_ports
from kestrel.config import ENV_DATA_DIR, ENV_RUNTIME, ENV_SM_ROOT
from kestrel.flow.launch import output_prefix
from kestrel.handlers import training_job as entry
from kestrel.local.worker import job_event, pack_model_dir
from kestrel.store.accounts import authenticate
from kestrel.store.lifecycle import build_manifest, find_job, job_name
from kestrel.vision.heads import ServedHead
from tests.api.http import Api
from tests.conftest import AWS_REGION, RunningServer, local_settings, running_server
from tests.flow.conftest import make_trainable_task

MODEL_FILE = "model.onnx"
CARD_FILE = "card.json"
DESCRIPTORS_FILE = "descriptors.npz"
HEAD_FILE = "head.npz"
STARTED = "training started"  # in the subject of the "training started" mail
TRAINED = " trained, accuracy "  # in the subject of the "training finished" mail (success)
FAILED = "failed"  # in the subject of the "training finished" mail (failure)


def _tar_member(name: str, data: bytes) -> bytes:
    """One regular file of a tar archive: its header block, then its data padded to 512 bytes."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    return info.tobuf() + data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


_TAR_END = b"\0" * (2 * tarfile.BLOCKSIZE)


def pack(files: dict[str, bytes]) -> bytes:
    """model.tar.gz holding ``files`` at its top level, as SageMaker packs /opt/ml/model."""
    tar = b"".join(_tar_member(name, data) for name, data in files.items()) + _TAR_END
    return gzip.compress(tar, compresslevel=1)


@dataclass(frozen=True)
class TrainedArtefact:
    model: bytes  # model.onnx of a real training
    card: dict[str, Any]  # its real card.json
    archive: bytes  # the model.tar.gz the job produced
    head: bytes  # its real head.npz
    descriptors: bytes = b""  # its descriptors.npz (the source task's image ids)
    model_part: bytes = field(init=False, repr=False)  # model.onnx as a tar member, gzipped once

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_part", gzip.compress(_tar_member(MODEL_FILE, self.model), compresslevel=1))

    @property
    def accuracy(self) -> float:
        return float(self.card["accuracy"])

    def card_for(self, model: dict[str, Any], labels: list[dict[str, Any]]) -> dict[str, Any]:
        """The real card with the ids of ``model`` (model JSON) and ``labels`` (label JSONs, matched by name)."""
        by_name = {label["name"]: label["id"] for label in labels}
        swaps = {self.card["model_id"]: model["id"], self.card["task_id"]: model["task"]}
        swaps.update({label["id"]: by_name[label["name"]] for label in self.card["labels"]})
        text = json.dumps(self.card)
        for old, new in swaps.items():
            text = text.replace(f'"{old}"', f'"{new}"')  # ids are whole JSON strings
        card: dict[str, Any] = json.loads(text)
        card.update(version=model["version"], task_name=model["task_name"])
        return card

    def head_for(self, model: dict[str, Any], labels: list[dict[str, Any]]) -> bytes:
        """The real head.npz with the label ids of ``labels`` (matched by name), as ``card_for``."""
        head = ServedHead.from_bytes(self.head)
        by_name = {label["name"]: label["id"] for label in labels}
        swapped = tuple({"id": by_name[label["name"]], "name": label["name"]} for label in head.labels)
        return replace(head, labels=swapped).to_bytes()

    def archive_for(self, model: dict[str, Any], labels: list[dict[str, Any]], with_head: bool = True) -> bytes:
        """model.tar.gz with the real model.onnx, and the card and head for ``model``.

        The ONNX member is compressed once (``model_part``); each archive appends a gzip member
        with its card, its head and the tar end. A gzip file may hold several members (RFC 1952),
        and any reader (gzip, tar, Python's tarfile) reads them as one stream."""
        card = json.dumps(self.card_for(model, labels), indent=1).encode()
        head = _tar_member(HEAD_FILE, self.head_for(model, labels)) if with_head else b""
        return self.model_part + gzip.compress(_tar_member(CARD_FILE, card) + head + _TAR_END, compresslevel=1)


def read_archive(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers() if member.isfile()}  # type: ignore[union-attr]


def train_artefact(data_dir: Path) -> TrainedArtefact:
    """Train a real model on the local runtime in ``data_dir``; its model.tar.gz and contents."""
    with running_server(build_ports(local_settings(data_dir)), "local") as server:
        api = Api(server.url, server.token)
        task = make_trainable_task(api, name="Artefact source")
        model = api.post(f"task/{task.task['id']}/train/", status=201)
        manifest = build_manifest(server.ports.items, find_job(server.ports.items, model["id"]))
        with tempfile.TemporaryDirectory(prefix="kestrel-sm-") as folder, pytest.MonkeyPatch.context() as env:
            root = Path(folder)
            (root / "input" / "data" / "manifest").mkdir(parents=True)
            (root / "input" / "data" / "manifest" / "manifest.json").write_text(json.dumps(manifest))
            env.setenv(ENV_SM_ROOT, str(root))
            env.setenv(ENV_RUNTIME, "local")
            env.setenv(ENV_DATA_DIR, str(data_dir))
            code = entry.main()
            failure = root / "output" / "failure"
            assert code == 0, failure.read_text() if failure.exists() else f"exit code {code}"
            archive = pack_model_dir(root / "model")
    files = read_archive(archive)
    assert set(files) == {MODEL_FILE, CARD_FILE, HEAD_FILE, DESCRIPTORS_FILE}
    return TrainedArtefact(
        files[MODEL_FILE], json.loads(files[CARD_FILE]), archive, files[HEAD_FILE], files[DESCRIPTORS_FILE]
    )


_trained: TrainedArtefact | None = None


def trained_once(tmp_path_factory: pytest.TempPathFactory) -> TrainedArtefact:
    """``train_artefact`` once per test process (each module's fixture asks; the first one trains)."""
    global _trained
    if _trained is None:
        _trained = train_artefact(tmp_path_factory.mktemp("artefact") / "data")
    return _trained


# -- driving the flow ---------------------------------------------------------------------------


def owner_id(server: RunningServer) -> str:
    return authenticate(server.ports.items, f"Token {server.token}")


def artefact_key(model_id: str) -> str:
    """Where SageMaker puts a job's model.tar.gz: <S3OutputPath>/<job name>/output/model.tar.gz."""
    return f"{output_prefix(model_id)}/{job_name(model_id)}/output/model.tar.gz"


def artefact_uri(server: RunningServer, model_id: str) -> str:
    bucket = server.ports.settings.bucket or "kestrel-local"
    return f"s3://{bucket}/{artefact_key(model_id)}"


def completed_event(server: RunningServer, model_id: str) -> dict[str, Any]:
    """The EventBridge "SageMaker Training Job State Change" event for a Completed job."""
    return job_event(job_name(model_id), "Completed", artefact_uri=artefact_uri(server, model_id))


def failed_event(model_id: str, reason: str, status: str = "Failed") -> dict[str, Any]:
    return job_event(job_name(model_id), status, reason=reason)


# -- mail ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentMail:
    to: str
    subject: str
    body: str


def sent_mails(server: RunningServer) -> list[SentMail]:
    """Every mail the runtime sent: SES's messages under moto, or the outbox's .eml files locally."""
    if server.runtime == "aws":
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        messages = ses_backends[DEFAULT_ACCOUNT_ID][AWS_REGION].sent_messages
        return [SentMail(", ".join(m.destinations["ToAddresses"]), m.subject, m.body) for m in messages]
    outbox = Path(server.ports.settings.data_dir) / "outbox"
    mails = []
    for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        message: Message = email.message_from_bytes(path.read_bytes())
        payload = message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        mails.append(SentMail(str(message["To"]), str(message["Subject"]), payload.decode()))
    return mails


def finish_mails(server: RunningServer) -> list[SentMail]:
    """The "training finished" mails (trained or failed)."""
    return [mail for mail in sent_mails(server) if TRAINED in mail.subject or FAILED in mail.subject]
