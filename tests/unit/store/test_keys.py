"""store.keys: the single-table layout. What the listings rely on: each entity in a partition of
its own under its owner's prefix, one sort-key letter per kind, lists that spread what grows,
``ord`` values that sort in creation (and version) order."""

from __future__ import annotations

from collections import Counter

from kestrel.domain.entities import now_iso
from kestrel.ports.items import Key
from kestrel.store import keys
from kestrel.store.keys import Space

OWNER = "3f1c2b9e-0000-4000-8000-000000000001"
OTHER = "3f1c2b9e-0000-4000-8000-000000000002"
SPACE = Space.default_of(OWNER)  # the default workspace lives in the owner's partition


def every_entity_key(space: Space) -> list[Key]:
    """One key of each kind of entity a workspace holds."""
    return [
        keys.task_key(space, "t1"),
        keys.label_key(space, "l1"),
        keys.image_key(space, "i1"),
        keys.content_key(space, "ab" * 32),
        keys.membership_key(space, "l1", "i1"),
        keys.model_key(space, "m1"),
        keys.model_version_key(space, "t1", 1),
    ]


def test_everything_an_owner_has_is_keyed_under_the_owners_prefix() -> None:
    pk = keys.owner_pk(OWNER)
    in_partition = [keys.owner_key(OWNER), keys.token_ref_key(OWNER, "t1"), keys.workspace_key(OWNER, "w")]
    own = every_entity_key(SPACE)
    assert {key[0] for key in in_partition} == {pk}  # a few items, bounded
    assert all(key[0].startswith(f"{pk}#") for key in own)  # each in a partition of its own
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
    assert keys.model_version_key(SPACE, "task", 7) == (f"{keys.owner_pk(OWNER)}#N#task#00000007", "N#task#00000007")


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
    assert keys.task_list(other) != keys.task_list(SPACE)
    assert set(keys.image_lists(other)).isdisjoint(keys.image_lists(SPACE))


def test_each_entity_of_a_workspace_has_a_partition_of_its_own() -> None:
    """No partition (item collection) grows with the customer: one entity per partition."""
    entity_keys = every_entity_key(SPACE)
    partitions = [pk for pk, _ in entity_keys]
    assert len(set(partitions)) == len(partitions)
    assert keys.owner_pk(OWNER) not in partitions
    for pk, sk in entity_keys:
        assert pk == f"{keys.space_pk(SPACE)}#{sk}"  # the workspace prefix, then the entity
    assert keys.image_key(SPACE, "i1") != keys.image_key(SPACE, "i2")


def test_image_lists_spread_images_evenly_over_the_shards() -> None:
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(16_000)]
    per_shard = Counter(keys.image_list(SPACE, image_id) for image_id in ids)
    assert set(per_shard) == set(keys.image_lists(SPACE))
    assert len(per_shard) == keys.SHARDS
    assert max(per_shard.values()) < 1.15 * 16_000 / keys.SHARDS  # within 15% of an even share
    # A membership goes to the same shard number as its image, in its label's lists.
    assert keys.membership_list(SPACE, "l1", ids[0]).endswith(keys.image_list(SPACE, ids[0])[-3:])
    assert keys.membership_list(SPACE, "l1", ids[0]) in keys.membership_lists(SPACE, "l1")


def test_list_of_names_the_list_of_every_listed_kind() -> None:
    assert keys.list_of(SPACE, "T#t1") == keys.task_list(SPACE)
    assert keys.list_of(SPACE, "L#l1") == keys.label_list(SPACE)
    assert keys.list_of(SPACE, "V#m1") == keys.model_list(SPACE)
    assert keys.list_of(SPACE, "I#i1") == keys.image_list(SPACE, "i1")
    assert keys.list_of(SPACE, "M#l1#i1") == keys.membership_list(SPACE, "l1", "i1")
    assert keys.list_of(SPACE, "H#ab") is None
    assert keys.list_of(SPACE, "N#t1#00000001") is None


def test_space_of_pk_reads_back_a_workspace_prefix() -> None:
    other = Space(OWNER, "7d1e0000-0000-4000-8000-000000000003")
    assert keys.space_of_pk(keys.space_pk(SPACE)) == SPACE
    assert keys.space_of_pk(keys.space_pk(other)) == other
    assert keys.space_of_pk(keys.task_key(SPACE, "t1")[0]) is None
    assert keys.space_of_pk(keys.token_key("ff" * 20)[0]) is None
