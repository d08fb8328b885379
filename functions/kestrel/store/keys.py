"""The single-table layout: which (pk, sk), list and ord each kind of item lives at.

An owner's profile, tokens and workspaces live in the owner's partition ``O#<owner>`` (a few
items, bounded). Every task, label, image, content marker, membership and model of a workspace
is keyed by its own id: its partition is the workspace's prefix (``space_pk``: ``O#<owner>`` for
the default workspace, ``O#<owner>#W#<workspace>`` for another) followed by its sort key, so no
partition ever holds more than one entity and no owner's traffic lands on one partition.

Listings read the *list index* instead: an item's ``lst`` attribute names the list it belongs to
and ``ord`` orders it there (creation time, ties by id). Lists that grow with the customer's
images (a workspace's images, a label's images) are split into ``SHARDS`` lists by a hash of the
image id; a listing merges them (``store.paging.merged``). docs/architecture.md, "Partition
design", has the numbers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from kestrel.domain.entities import default_workspace_id
from kestrel.ports.items import LIST, ORD, PK, SK, Item, Key


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
    """The prefix of every key of the workspace's items (their partition before layout 2)."""
    if space.is_default:
        return owner_pk(space.owner_id)
    return f"O#{space.owner_id}#W#{space.workspace_id}"


def space_of_pk(pk: str) -> Space | None:
    """The workspace whose ``space_pk`` is ``pk``; None if ``pk`` is not one."""
    parts = pk.split("#")
    if len(parts) == 2 and parts[0] == "O":
        return Space.default_of(parts[1])
    if len(parts) == 4 and parts[0] == "O" and parts[2] == "W":
        return Space(parts[1], parts[3])
    return None


def own_key(space: Space, sk: str) -> Key:
    """An entity of a workspace in a partition of its own: the workspace prefix + its sort key."""
    return (f"{space_pk(space)}#{sk}", sk)


#: Lists that grow with the images are split in this many; changing it needs a re-keying.
SHARDS = 16


def shard_of(image_id: str) -> int:
    return int(hashlib.sha256(image_id.encode()).hexdigest()[:8], 16) % SHARDS


def task_list(space: Space) -> str:
    return f"{space_pk(space)}#T"


def label_list(space: Space) -> str:
    return f"{space_pk(space)}#L"


def model_list(space: Space) -> str:
    return f"{space_pk(space)}#V"


def image_list(space: Space, image_id: str) -> str:
    return f"{space_pk(space)}#I#{shard_of(image_id):02d}"


def image_lists(space: Space) -> list[str]:
    return [f"{space_pk(space)}#I#{shard:02d}" for shard in range(SHARDS)]


def membership_list(space: Space, label_id: str, image_id: str) -> str:
    return f"{space_pk(space)}#M#{label_id}#{shard_of(image_id):02d}"


def membership_lists(space: Space, label_id: str) -> list[str]:
    return [f"{space_pk(space)}#M#{label_id}#{shard:02d}" for shard in range(SHARDS)]


def list_of(space: Space, sk: str) -> str | None:
    """The list an item of the workspace with sort key ``sk`` belongs to (None: in no list)."""
    kind, _, rest = sk.partition("#")
    if kind == "T":
        return task_list(space)
    if kind == "L":
        return label_list(space)
    if kind == "V":
        return model_list(space)
    if kind == "I":
        return image_list(space, rest)
    if kind == "M":
        label_id, _, image_id = rest.partition("#")
        return membership_list(space, label_id, image_id)
    if kind == "R":
        return review_list(space, rest.partition("#")[2])
    return None  # H# (content marker), N# (version pointer): read by key only


def placement(space: Space, key: Key, ord_value: str) -> Item:
    """Where an item of the workspace is stored and listed: its key, the list its sort key puts it
    in (``list_of``: the one place that decides), and its order there."""
    pk, sk = key
    placed: Item = {PK: pk, SK: sk, ORD: ord_value}
    list_key = list_of(space, sk)
    if list_key is not None:
        placed[LIST] = list_key
    return placed


#: The kinds keyed by their own id (``own_key``); what else is in ``O#<owner>`` stays there.
OWN_KINDS = ("T#", "L#", "I#", "H#", "M#", "V#", "N#")


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
    return own_key(space, f"T#{task_id}")


def task_ord(created: str, task_id: str) -> str:
    return f"T#{created}#{task_id}"


def label_key(space: Space, label_id: str) -> Key:
    return own_key(space, f"L#{label_id}")


def label_ord(created: str, label_id: str) -> str:
    return f"L#{created}#{label_id}"


def image_key(space: Space, image_id: str) -> Key:
    return own_key(space, f"I#{image_id}")


def image_ord(created: str, image_id: str) -> str:
    return f"I#{created}#{image_id}"


def content_key(space: Space, content_hash: str) -> Key:
    """Marks which image holds these exact bytes, for duplicate detection."""
    return own_key(space, f"H#{content_hash}")


def membership_key(space: Space, label_id: str, image_id: str) -> Key:
    """One item per (label, image) pair: lists a label's images (``membership_lists``) without
    scanning all images."""
    return own_key(space, f"M#{label_id}#{image_id}")


def membership_ord_prefix(label_id: str) -> str:
    return f"M#{label_id}#"


def membership_ord(label_id: str, image_created: str, image_id: str) -> str:
    return f"M#{label_id}#{image_created}#{image_id}"


def model_key(space: Space, model_id: str) -> Key:
    return own_key(space, f"V#{model_id}")


def model_ord(task_id: str, version: int) -> str:
    return f"V#{task_id}#{version:08d}"


def model_version_key(space: Space, task_id: str, version: int) -> Key:
    """Points from (task, version) to the model id; guards against two models with one number."""
    return own_key(space, f"N#{task_id}#{version:08d}")


def review_key(space: Space, image_id: str, task_id: str) -> Key:
    """An image's place in one task's review queue (queued, reviewed or skipped). The image's
    entries share one partition (``review_image_pk``; as many items as tasks that stored or
    reviewed it), so everything about one image is one query (when it is labelled or deleted)."""
    return (review_image_pk(space, image_id), f"R#{image_id}#{task_id}")


def review_image_pk(space: Space, image_id: str) -> str:
    return f"{space_pk(space)}#R#{image_id}"


def review_list(space: Space, task_id: str) -> str:
    """The list of a task's review entries (every state; ``review_ord`` orders and separates them)."""
    return f"{space_pk(space)}#RQ#{task_id}"


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
