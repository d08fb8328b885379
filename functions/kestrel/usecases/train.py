"""Request a training: record version n+1 (WAITING) and queue its train request.

A request that cannot be queued must not leave the version WAITING (nothing would ever launch
it): it is marked FAILED at once, and the caller learns why."""

from __future__ import annotations

from kestrel.domain.entities import Model
from kestrel.ports import Ports
from kestrel.ports.errors import Unavailable
from kestrel.ports.jobs import TrainRequest
from kestrel.store import lifecycle
from kestrel.store.keys import Space


def request_training(ports: Ports, space: Space, task_id: str) -> Model:
    """The new version, queued. Raises the rules' errors (too few labels or images), and
    ``Unavailable`` when the queue stayed busy (the version is then FAILED; asking again is safe)."""
    model = lifecycle.create_version(ports.items, space, task_id)
    request = TrainRequest(
        owner_id=space.owner_id,
        task_id=task_id,
        model_id=model.id,
        version=model.version,
        workspace_id=space.workspace_id,
    )
    try:
        ports.queue.send(request)
    except Exception as error:
        # Should the message have been queued after all, the launcher skips a version that is
        # no longer WAITING.
        ref = lifecycle.JobRef(space, task_id, model.id)
        lifecycle.mark_failed(ports.items, ref, "the train request could not be queued", mail=False)
        if isinstance(error, Unavailable):
            raise Unavailable(
                error.what,
                f"version {model.version} not queued: {error.reason}",
                error.retry_after,
                detail=f"the train request could not be queued (version {model.version} is marked FAILED); "
                f"request training again in {error.retry_after} seconds",
            ) from error
        raise
    return model
