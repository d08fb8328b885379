"""store.keys: the single-table layout. What the listings rely on: one partition per owner, one
sort-key letter per kind, ``ord`` values that sort in creation (and version) order."""

from __future__ import annotations

from kestrel.domain.entities import now_iso
from kestrel.store import keys
from kestrel.store.keys import Space

OWNER = "3f1c2b9e-0000-4000-8000-000000000001"
OTHER = "3f1c2b9e-0000-4000-8000-000000000002"
SPACE = Space.default_of(OWNER)  # the default workspace lives in the owner's partition


def test_everything_an_owner_has_lives_in_the_owners_partition() -> None:
    pk = keys.owner_pk(OWNER)
    owned = [
        keys.owner_key(OWNER),
        keys.token_ref_key(OWNER, "t1"),
        keys.task_key(SPACE, "x"),
        keys.label_key(SPACE, "x"),
        keys.image_key(SPACE, "x"),
        keys.content_key(SPACE, "ab" * 32),
        keys.membership_key(SPACE, "l", "i"),
        keys.model_key(SPACE, "x"),
        keys.model_version_key(SPACE, "t", 1),
    ]
    assert {key[0] for key in owned} == {pk}
    assert keys.owner_pk(OTHER) != pk
    assert keys.task_key(Space.default_of(OTHER), "x") != keys.task_key(SPACE, "x")


def test_each_kind_has_its_own_sort_key_letter() -> None:
    same_id = "0000"
    sort_keys = {
        "task": keys.task_key(SPACE, same_id)[1],
        "label": keys.label_key(SPACE, same_id)[1],
        "image": keys.image_key(SPACE, same_id)[1],
        "model": keys.model_key(SPACE, same_id)[1],
        "content": keys.content_key(SPACE, same_id)[1],
        "token": keys.token_ref_key(OWNER, same_id)[1],
    }
    assert {kind: sk[:2] for kind, sk in sort_keys.items()} == {
        "task": "T#",
        "label": "L#",
        "image": "I#",
        "model": "V#",
        "content": "H#",
        "token": "K#",
    }
    assert keys.owner_key(OWNER)[1] == keys.PROFILE_SK


def test_emails_are_keyed_without_regard_to_case() -> None:
    assert keys.email_key("Ada@Example.COM") == keys.email_key("ada@example.com")
    assert keys.email_key("ada@example.com") != keys.email_key("bob@example.com")


def test_global_keys_are_outside_every_owners_partition() -> None:
    for key in (keys.email_key("a@b"), keys.token_key("ff" * 32)):
        assert not key[0].startswith("O#")
    assert keys.owner_pk(OWNER) != keys.OWNERS_PK


def test_ords_sort_in_creation_order_with_the_id_breaking_ties() -> None:
    earlier, later = "2026-01-01T00:00:00.000001Z", "2026-01-01T00:00:00.000002Z"
    for ord_of in (keys.task_ord, keys.label_ord, keys.image_ord):
        assert ord_of(earlier, "ffff") < ord_of(later, "0000")
        assert ord_of(earlier, "aaaa") < ord_of(earlier, "bbbb")
    first, second = now_iso(), now_iso()
    assert keys.image_ord(first, "z") <= keys.image_ord(second, "z")


def test_model_ords_sort_versions_as_numbers_within_their_task() -> None:
    versions = [1, 2, 9, 10, 11, 100, 12345678]
    ords = [keys.model_ord("task", version) for version in versions]
    assert ords == sorted(ords)
    assert keys.model_ord("task", 10) == "V#task#00000010"
    assert keys.model_ord("task", 3).startswith("V#task#")
    # The version pointer is zero-padded the same way, so (task, version) maps to one key.
    assert keys.model_version_key(SPACE, "task", 7) == (keys.owner_pk(OWNER), "N#task#00000007")


def test_a_labels_memberships_share_a_prefix_and_sort_by_image_creation() -> None:
    prefix = keys.membership_ord_prefix("label-1")
    older = keys.membership_ord("label-1", "2026-01-01T00:00:00.000001Z", "img-b")
    newer = keys.membership_ord("label-1", "2026-01-02T00:00:00.000001Z", "img-a")
    assert older.startswith(prefix) and newer.startswith(prefix)
    assert older < newer
    assert not keys.membership_ord("label-10", "2026", "x").startswith(prefix)
    assert keys.membership_key(SPACE, "label-1", "img-a")[1].startswith(prefix)


def test_blob_keys_keep_an_owners_files_under_the_owners_folder() -> None:
    assert keys.image_blob(OWNER, "img", "img.png") == f"images/{OWNER}/img/img.png"
    assert keys.thumb_blob(OWNER, "img", "img_thumb.jpg") == f"images/{OWNER}/img/img_thumb.jpg"
    assert keys.upload_blob(OWNER, "up") == f"uploads/{OWNER}/up"
    assert keys.image_blob(OWNER, "img", "img.png") != keys.image_blob(OTHER, "img", "img.png")


def test_another_workspace_has_its_own_partition() -> None:
    other = Space(OWNER, "7d1e0000-0000-4000-8000-000000000003")
    assert not other.is_default and SPACE.is_default
    assert keys.space_pk(other) == f"O#{OWNER}#W#{other.workspace_id}"
    assert keys.task_key(other, "x")[0] != keys.task_key(SPACE, "x")[0]
    assert keys.task_key(other, "x")[1] == keys.task_key(SPACE, "x")[1]  # the same sort keys
    assert keys.workspace_key(OWNER, other.workspace_id)[0] == keys.owner_pk(OWNER)
