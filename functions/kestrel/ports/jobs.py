"""Ports of the training flow: the queue of train requests and the job launcher."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class TrainRequest:
    """What the train route enqueues: which model version to train."""

    owner_id: str
    task_id: str
    model_id: str
    version: int
    workspace_id: str | None = None  # None: the owner's default workspace (and older messages)

    def to_message(self) -> dict[str, Any]:
        return {
            "owner_id": self.owner_id,
            "task_id": self.task_id,
            "model_id": self.model_id,
            "version": self.version,
            "workspace": self.workspace_id,
        }

    @classmethod
    def from_message(cls, body: dict[str, Any]) -> TrainRequest:
        return cls(
            owner_id=str(body["owner_id"]),
            task_id=str(body["task_id"]),
            model_id=str(body["model_id"]),
            version=int(body["version"]),
            workspace_id=str(body["workspace"]) if body.get("workspace") else None,
        )


class TrainQueue(Protocol):
    """SQS on AWS; a durable table in SQLite locally."""

    def send(self, request: TrainRequest) -> None: ...


@dataclass(frozen=True)
class JobSpec:
    """One training job, named after its model: launching the same spec twice starts it once."""

    job_name: str
    manifest_key: str  # blob key of the manifest (the job's input channel)
    output_prefix: str  # blob key prefix under which the job's model.tar.gz lands
    hyperparameters: dict[str, str]
    tags: dict[str, str]


class JobLauncher(Protocol):
    """SageMaker CreateTrainingJob on AWS; a subprocess run by the local worker."""

    def launch(self, spec: JobSpec) -> bool:
        """Start the job; False if a job with that name already exists (a repeated request)."""
        ...
