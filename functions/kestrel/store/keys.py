"""The single-table layout: which (pk, sk, ord) each kind of item lives at.

Everything an owner has lives in the owner's partition ``O#<owner>``; its sort keys start with
one letter per kind. ``ord`` orders listings by creation time (and ties by id)."""

from __future__ import annotations

from kestrel.ports.items import Key


def owner_pk(owner_id: str) -> str:
    return f"O#{owner_id}"


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


def task_key(owner_id: str, task_id: str) -> Key:
    return (owner_pk(owner_id), f"T#{task_id}")


def task_ord(created: str, task_id: str) -> str:
    return f"T#{created}#{task_id}"


def label_key(owner_id: str, label_id: str) -> Key:
    return (owner_pk(owner_id), f"L#{label_id}")


def label_ord(created: str, label_id: str) -> str:
    return f"L#{created}#{label_id}"


def image_key(owner_id: str, image_id: str) -> Key:
    return (owner_pk(owner_id), f"I#{image_id}")


def image_ord(created: str, image_id: str) -> str:
    return f"I#{created}#{image_id}"


def content_key(owner_id: str, content_hash: str) -> Key:
    """Marks which image holds these exact bytes, for duplicate detection."""
    return (owner_pk(owner_id), f"H#{content_hash}")


def membership_key(owner_id: str, label_id: str, image_id: str) -> Key:
    """One item per (label, image) pair: lists a label's images without scanning all images."""
    return (owner_pk(owner_id), f"M#{label_id}#{image_id}")


def membership_ord_prefix(label_id: str) -> str:
    return f"M#{label_id}#"


def membership_ord(label_id: str, image_created: str, image_id: str) -> str:
    return f"M#{label_id}#{image_created}#{image_id}"


def model_key(owner_id: str, model_id: str) -> Key:
    return (owner_pk(owner_id), f"V#{model_id}")


def model_ord(task_id: str, version: int) -> str:
    return f"V#{task_id}#{version:08d}"


def model_version_key(owner_id: str, task_id: str, version: int) -> Key:
    """Points from (task, version) to the model id; guards against two models with one number."""
    return (owner_pk(owner_id), f"N#{task_id}#{version:08d}")


# Blob keys
def image_blob(owner_id: str, image_id: str, file_name: str) -> str:
    """``file_name`` is the image's (``TrainingImage.file_name``): ``<id>.<ext>``, or ``original``
    for images stored before names were unique."""
    return f"images/{owner_id}/{image_id}/{file_name}"


def thumb_blob(owner_id: str, image_id: str, file_name: str) -> str:
    return f"images/{owner_id}/{image_id}/{file_name}"


def upload_blob(owner_id: str, upload_id: str) -> str:
    return f"uploads/{owner_id}/{upload_id}"
