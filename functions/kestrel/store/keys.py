"""The single-table layout: which (pk, sk, ord) each kind of item lives at.

An owner's profile, tokens and workspaces live in the owner's partition ``O#<owner>``. The
tasks, labels, images and models of a workspace live in the workspace's partition: the default
workspace's is the owner's partition itself (so data stored before workspaces existed is in the
default workspace), another workspace's is ``O#<owner>#W#<workspace>``. Sort keys start with one
letter per kind. ``ord`` orders listings by creation time (and ties by id)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kestrel.domain.entities import default_workspace_id
from kestrel.ports.items import Key


def owner_pk(owner_id: str) -> str:
    return f"O#{owner_id}"


@dataclass(frozen=True)
class Space:
    """One workspace of one owner: where its tasks, labels, images and models are kept."""

    owner_id: str
    workspace_id: str

    @classmethod
    def default_of(cls, owner_id: str) -> Space:
        return cls(owner_id, default_workspace_id(owner_id))

    @property
    def is_default(self) -> bool:
        return self.workspace_id == default_workspace_id(self.owner_id)


class _InSpace(Protocol):
    owner_id: str
    workspace_id: str


def space_of(entity: _InSpace) -> Space:
    """Where a stored entity lives (its owner and workspace)."""
    return Space(entity.owner_id, entity.workspace_id or default_workspace_id(entity.owner_id))


def space_pk(space: Space) -> str:
    if space.is_default:
        return owner_pk(space.owner_id)
    return f"O#{space.owner_id}#W#{space.workspace_id}"


def workspace_key(owner_id: str, workspace_id: str) -> Key:
    return (owner_pk(owner_id), f"W#{workspace_id}")


def workspace_ord(created: str, workspace_id: str) -> str:
    return f"W#{created}#{workspace_id}"


PROFILE_SK = "PROFILE"
OWNERS_PK = "OWNERS"  # one item per owner, for admin listings


def owner_key(owner_id: str) -> Key:
    return (owner_pk(owner_id), PROFILE_SK)


def email_key(email: str) -> Key:
    return (f"EMAIL#{email.lower()}", "OWNER")


def token_key(token_hash: str) -> Key:
    return (f"TOKEN#{token_hash}", "TOKEN")


def token_ref_key(owner_id: str, token_id: str) -> Key:
    return (owner_pk(owner_id), f"K#{token_id}")


def usage_key_key(owner_id: str) -> Key:
    """The owner's API key in the usage plan (AWS): its id and value."""
    return (owner_pk(owner_id), "USAGE_KEY")


def task_key(space: Space, task_id: str) -> Key:
    return (space_pk(space), f"T#{task_id}")


def task_ord(created: str, task_id: str) -> str:
    return f"T#{created}#{task_id}"


def label_key(space: Space, label_id: str) -> Key:
    return (space_pk(space), f"L#{label_id}")


def label_ord(created: str, label_id: str) -> str:
    return f"L#{created}#{label_id}"


def image_key(space: Space, image_id: str) -> Key:
    return (space_pk(space), f"I#{image_id}")


def image_ord(created: str, image_id: str) -> str:
    return f"I#{created}#{image_id}"


def content_key(space: Space, content_hash: str) -> Key:
    """Marks which image holds these exact bytes, for duplicate detection."""
    return (space_pk(space), f"H#{content_hash}")


def membership_key(space: Space, label_id: str, image_id: str) -> Key:
    """One item per (label, image) pair: lists a label's images without scanning all images."""
    return (space_pk(space), f"M#{label_id}#{image_id}")


def membership_ord_prefix(label_id: str) -> str:
    return f"M#{label_id}#"


def membership_ord(label_id: str, image_created: str, image_id: str) -> str:
    return f"M#{label_id}#{image_created}#{image_id}"


def model_key(space: Space, model_id: str) -> Key:
    return (space_pk(space), f"V#{model_id}")


def model_ord(task_id: str, version: int) -> str:
    return f"V#{task_id}#{version:08d}"


def model_version_key(space: Space, task_id: str, version: int) -> Key:
    """Points from (task, version) to the model id; guards against two models with one number."""
    return (space_pk(space), f"N#{task_id}#{version:08d}")


def review_key(space: Space, image_id: str, task_id: str) -> Key:
    """An image's place in one task's review queue (queued, reviewed or skipped). Keyed by the
    image first, so everything about one image is one query (when it is labelled or deleted)."""
    return (space_pk(space), f"R#{image_id}#{task_id}")


def review_image_prefix(image_id: str) -> str:
    return f"R#{image_id}#"


#: ``ord`` prefix letter of each review state: queued entries sort by uncertainty (most
#: uncertain first), reviewed and skipped ones by when that happened.
REVIEW_STATES = {"queued": "RQ", "reviewed": "RD", "skipped": "RS"}


def review_ord_prefix(task_id: str, state: str) -> str:
    return f"{REVIEW_STATES[state]}#{task_id}#"


def review_ord(task_id: str, state: str, position: str, image_id: str) -> str:
    """``position``: the uncertainty sort key (queued) or a timestamp (reviewed, skipped)."""
    return f"{review_ord_prefix(task_id, state)}{position}#{image_id}"


# Blob keys
def image_blob(owner_id: str, image_id: str, file_name: str) -> str:
    """``file_name`` is the image's (``TrainingImage.file_name``): ``<id>.<ext>``, or ``original``
    for images stored before names were unique."""
    return f"images/{owner_id}/{image_id}/{file_name}"


def thumb_blob(owner_id: str, image_id: str, file_name: str) -> str:
    return f"images/{owner_id}/{image_id}/{file_name}"


def upload_blob(owner_id: str, upload_id: str) -> str:
    return f"uploads/{owner_id}/{upload_id}"
