"""The ItemStore contract: every test runs against SQLite and against DynamoDB (under moto).

Where the port's meaning is defined by ``item_rules`` (conditions, updates), the tests compare
each store with that reference instead of restating it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from kestrel.adapters import dynamo_items
from kestrel.adapters.dynamo_items import DynamoItemStore, StoreBusy, create_table
from kestrel.adapters.item_rules import apply_update, condition_holds
from kestrel.ports.items import (
    Condition,
    ConditionFailed,
    Delete,
    Item,
    ItemStore,
    Put,
    Update,
    Write,
)

if TYPE_CHECKING:
    from tests.contract.conftest import ItemBackend

P = "T#1"  # the partition most tests use


def sks(found: object) -> list[str]:
    return [item["sk"] for item in found]  # type: ignore[attr-defined]


# -- values ---------------------------------------------------------------------------------

EVERY_TYPE: Item = {
    "pk": P,
    "sk": "values",
    "text": "héllo ✓ 😀",
    "empty_text": "",
    "int": 42,
    "negative": -7,
    "zero": 0,
    "big": 2**62 + 1,
    "float": 1.5,
    "tenth": 0.1,
    "negative_float": -2.25,
    "small_float": 1.25e-7,
    "true": True,
    "false": False,
    "none": None,
    "nested": {"a": [1, 2.5, "x", None, True, {"deep": {"deeper": []}}], "b": {"c": False}},
    "list": ["a", 1, [2, [3]], {}],
    "empty_map": {},
    "empty_list": [],
}


def test_every_value_type_round_trips(items: ItemStore) -> None:
    items.put(EVERY_TYPE)
    got = items.get((P, "values"))
    assert got == EVERY_TYPE
    assert got is not None
    # == would let True pass for 1 and 1.0 for 1: check the types too.
    for name in ("int", "negative", "zero", "big"):
        assert type(got[name]) is int, name
    for name in ("float", "tenth", "negative_float", "small_float"):
        assert type(got[name]) is float, name
    assert got["true"] is True
    assert got["false"] is False
    assert got["none"] is None
    assert got["nested"]["a"][4] is True
    assert type(got["nested"]["a"][1]) is float


def test_get_of_a_missing_item_is_none(items: ItemStore) -> None:
    assert items.get((P, "nothing")) is None


def test_put_replaces_the_whole_item(items: ItemStore) -> None:
    items.put({"pk": P, "sk": "a", "x": 1, "y": 2})
    items.put({"pk": P, "sk": "a", "x": 3})
    assert items.get((P, "a")) == {"pk": P, "sk": "a", "x": 3}


def test_items_are_addressed_by_both_keys(items: ItemStore) -> None:
    items.put({"pk": P, "sk": "a", "v": 1})
    items.put({"pk": "T#2", "sk": "a", "v": 2})
    items.put({"pk": P, "sk": "b", "v": 3})
    assert items.get((P, "a")) == {"pk": P, "sk": "a", "v": 1}
    assert items.get(("T#2", "a")) == {"pk": "T#2", "sk": "a", "v": 2}


# -- conditions -----------------------------------------------------------------------------

CURRENT: Item = {"pk": P, "sk": "c", "state": "open", "n": 3, "labels": {"L1": 1, "L2": 0}}

CONDITIONS = {
    "exists": Condition(exists=True),
    "not-exists": Condition(exists=False),
    "equals-str": Condition(equals={"state": "open"}),
    "equals-wrong": Condition(equals={"state": "closed"}),
    "equals-int": Condition(equals={"n": 3}),
    "equals-two-one-wrong": Condition(equals={"state": "open", "n": 4}),
    "equals-none-missing": Condition(equals={"absent": None}),
    "equals-none-present": Condition(equals={"state": None}),
    "map-has": Condition(map_has=("labels", "L1")),
    "map-has-falsy-value": Condition(map_has=("labels", "L2")),
    "map-has-wrong": Condition(map_has=("labels", "L9")),
    "map-has-no-map": Condition(map_has=("tags", "L1")),
    "map-lacks": Condition(map_lacks=("labels", "L9")),
    "map-lacks-wrong": Condition(map_lacks=("labels", "L1")),
    "map-lacks-no-map": Condition(map_lacks=("tags", "L1")),
    "all-parts": Condition(exists=True, equals={"state": "open"}, map_has=("labels", "L1"), map_lacks=("labels", "X")),
    "all-parts-one-wrong": Condition(exists=True, equals={"state": "open"}, map_has=("labels", "X")),
}


def _expected(current: Item | None, name: str) -> bool:
    return condition_holds(current, CONDITIONS[name])


def test_condition_table_matches_the_reference() -> None:
    # Guard against a table that tests only one outcome.
    outcomes = {_expected(CURRENT, name) for name in CONDITIONS}
    assert outcomes == {True, False}


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_condition_on_put(items: ItemStore, name: str) -> None:
    items.put(CURRENT)
    replacement = {"pk": P, "sk": "c", "replaced": True}
    if _expected(CURRENT, name):
        items.put(replacement, CONDITIONS[name])
        assert items.get((P, "c")) == replacement
    else:
        with pytest.raises(ConditionFailed) as failed:
            items.put(replacement, CONDITIONS[name])
        assert failed.value.index == 0
        assert items.get((P, "c")) == CURRENT


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_condition_on_put_of_a_new_item(items: ItemStore, name: str) -> None:
    new = {"pk": P, "sk": "new", "v": 1}
    if _expected(None, name):
        items.put(new, CONDITIONS[name])
        assert items.get((P, "new")) == new
    else:
        with pytest.raises(ConditionFailed):
            items.put(new, CONDITIONS[name])
        assert items.get((P, "new")) is None


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_condition_on_update(items: ItemStore, name: str) -> None:
    items.put(CURRENT)
    update = Update((P, "c"), set={"touched": True}, condition=CONDITIONS[name])
    if _expected(CURRENT, name):
        assert items.update(update) == {**CURRENT, "touched": True}
        assert items.get((P, "c")) == {**CURRENT, "touched": True}
    else:
        with pytest.raises(ConditionFailed) as failed:
            items.update(update)
        assert failed.value.index == 0
        assert items.get((P, "c")) == CURRENT


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_condition_on_delete(items: ItemStore, name: str) -> None:
    items.put(CURRENT)
    if _expected(CURRENT, name):
        items.delete((P, "c"), CONDITIONS[name])
        assert items.get((P, "c")) is None
    else:
        with pytest.raises(ConditionFailed) as failed:
            items.delete((P, "c"), CONDITIONS[name])
        assert failed.value.index == 0
        assert items.get((P, "c")) == CURRENT


def test_delete_of_a_missing_item_without_condition_is_quiet(items: ItemStore) -> None:
    items.delete((P, "nothing"))
    with pytest.raises(ConditionFailed):
        items.delete((P, "nothing"), Condition(exists=True))


# -- updates --------------------------------------------------------------------------------

BASE: Item = {"pk": P, "sk": "u", "name": "a", "n": 5, "gone": "x", "labels": {"L1": 1, "L2": 2}, "ord": "o1"}

UPDATES = {
    "set": Update((P, "u"), set={"name": "b", "new": {"k": [1, 2.5]}, "flag": False}),
    "set-none": Update((P, "u"), set={"name": None}),
    "remove": Update((P, "u"), remove=["gone", "never-there"]),
    "increment": Update((P, "u"), increment={"n": 2}),
    "decrement": Update((P, "u"), increment={"n": -7}),
    "increment-missing-is-zero": Update((P, "u"), increment={"count": 3}),
    "map-set-existing-map": Update((P, "u"), map_set={"labels": {"L2": 20, "L3": {"deep": True}}}),
    "map-set-missing-map": Update((P, "u"), map_set={"tags": {"t1": 1}}),
    "map-set-odd-keys": Update((P, "u"), map_set={"labels": {"a.b": 1, "#c": 2, ":d": 3, "e f": 4}}),
    "map-remove": Update((P, "u"), map_remove={"labels": ["L1", "absent"]}),
    "map-remove-missing-map": Update((P, "u"), map_remove={"tags": ["t1"]}),
    "map-set-and-remove-one-map": Update((P, "u"), map_set={"labels": {"L3": 3}}, map_remove={"labels": ["L1"]}),
    "map-set-and-remove-same-key": Update((P, "u"), map_set={"labels": {"L1": 9}}, map_remove={"labels": ["L1"]}),
    "map-set-and-remove-missing-map": Update((P, "u"), map_set={"tags": {"a": 1, "b": 2}}, map_remove={"tags": ["a"]}),
    "set-ord": Update((P, "u"), set={"ord": "o2"}),
    "remove-ord": Update((P, "u"), remove=["ord"]),
    "everything": Update(
        (P, "u"),
        set={"name": "z"},
        remove=["gone"],
        increment={"n": 1, "m": 1},
        map_set={"labels": {"L9": 9}, "tags": {"t": "x"}},
        map_remove={"labels": ["L2"]},
    ),
    # One attribute through two kinds of action: folded the way item_rules applies them.
    "set-then-remove": Update((P, "u"), set={"name": "q"}, remove=["name"]),
    "set-then-increment": Update((P, "u"), set={"n": 10}, increment={"n": 1}),
    "remove-then-increment": Update((P, "u"), remove=["n"], increment={"n": 4}),
    "set-map-then-map-set": Update((P, "u"), set={"labels": {"A": 1}}, map_set={"labels": {"B": 2}}),
    "remove-map-then-map-set": Update((P, "u"), remove=["labels"], map_set={"labels": {"B": 2}}),
    "set-map-then-map-remove": Update((P, "u"), set={"labels": {"A": 1, "B": 2}}, map_remove={"labels": ["A"]}),
    "nothing": Update((P, "u")),
}


@pytest.mark.parametrize("name", list(UPDATES))
def test_update_matches_the_reference(items: ItemStore, name: str) -> None:
    items.put(BASE)
    expected = apply_update(BASE, UPDATES[name])
    assert items.update(UPDATES[name]) == expected
    assert items.get((P, "u")) == expected


@pytest.mark.parametrize("name", list(UPDATES))
def test_update_in_a_transaction_matches_the_reference(items: ItemStore, name: str) -> None:
    items.put(BASE)
    items.transact([Put({"pk": P, "sk": "other"}), UPDATES[name]])
    assert items.get((P, "u")) == apply_update(BASE, UPDATES[name])


def test_update_of_a_missing_item_fails_unless_upsert(items: ItemStore) -> None:
    update = Update((P, "new"), set={"name": "a"}, increment={"n": 2}, map_set={"labels": {"L1": 1}})
    with pytest.raises(ConditionFailed) as failed:
        items.update(update)
    assert failed.value.index == 0
    assert items.get((P, "new")) is None

    created = items.update(Update(update.key, update.set, (), update.increment, update.map_set, upsert=True))
    expected = {"pk": P, "sk": "new", "name": "a", "n": 2, "labels": {"L1": 1}}
    assert created == expected
    assert items.get((P, "new")) == expected


def test_upsert_of_an_existing_item_updates_it(items: ItemStore) -> None:
    items.put(BASE)
    update = Update((P, "u"), increment={"n": 1}, upsert=True)
    assert items.update(update)["n"] == 6


def test_upsert_that_sets_nothing_creates_a_bare_item(items: ItemStore) -> None:
    assert items.update(Update((P, "bare"), upsert=True)) == {"pk": P, "sk": "bare"}
    assert items.get((P, "bare")) == {"pk": P, "sk": "bare"}


def test_update_with_a_condition_and_a_missing_map(items: ItemStore) -> None:
    # The map does not exist yet, so the DynamoDB adapter takes its guarded path; the caller's
    # condition must still decide on its own.
    items.put({"pk": P, "sk": "m", "state": "open"})
    refused = Update((P, "m"), map_set={"tags": {"a": 1}}, condition=Condition(equals={"state": "closed"}))
    with pytest.raises(ConditionFailed):
        items.update(refused)
    assert items.get((P, "m")) == {"pk": P, "sk": "m", "state": "open"}
    with pytest.raises(ConditionFailed) as failed:
        items.transact([Put({"pk": P, "sk": "x"}), refused])
    assert failed.value.index == 1
    assert items.get((P, "x")) is None

    accepted = Update((P, "m"), map_set={"tags": {"a": 1}}, condition=Condition(map_lacks=("tags", "a")))
    assert items.update(accepted) == {"pk": P, "sk": "m", "state": "open", "tags": {"a": 1}}


# -- transactions ---------------------------------------------------------------------------


def test_transaction_applies_every_kind_of_write(items: ItemStore) -> None:
    items.put({"pk": P, "sk": "b", "n": 1})
    items.put({"pk": P, "sk": "c"})
    items.transact(
        [
            Put({"pk": P, "sk": "a", "v": 1}, Condition(exists=False)),
            Update((P, "b"), increment={"n": 1}, condition=Condition(equals={"n": 1})),
            Delete((P, "c"), Condition(exists=True)),
        ]
    )
    assert items.get((P, "a")) == {"pk": P, "sk": "a", "v": 1}
    assert items.get((P, "b")) == {"pk": P, "sk": "b", "n": 2}
    assert items.get((P, "c")) is None


@pytest.mark.parametrize(
    "third",
    [
        Put({"pk": P, "sk": "c", "v": 1}, Condition(exists=False)),
        Update((P, "c"), set={"v": 2}, condition=Condition(equals={"v": 9})),
        Update((P, "missing"), set={"v": 2}),
        Update((P, "c"), map_set={"tags": {"a": 1}}, condition=Condition(equals={"v": 9})),
        Delete((P, "c"), Condition(map_has=("labels", "x"))),
    ],
    ids=["put", "update", "update-missing", "update-map", "delete"],
)
def test_transaction_is_all_or_nothing(items: ItemStore, third: Write) -> None:
    items.put({"pk": P, "sk": "b", "n": 1})
    items.put({"pk": P, "sk": "c", "v": 0})
    writes: list[Write] = [
        Put({"pk": P, "sk": "a", "v": 1}),
        Update((P, "b"), increment={"n": 1}, map_set={"m": {"k": 1}}),
        third,
        Put({"pk": P, "sk": "d"}),
    ]
    with pytest.raises(ConditionFailed) as failed:
        items.transact(writes)
    assert failed.value.index == 2
    assert items.get((P, "a")) is None
    assert items.get((P, "b")) == {"pk": P, "sk": "b", "n": 1}
    assert items.get((P, "c")) == {"pk": P, "sk": "c", "v": 0}
    assert items.get((P, "d")) is None


def test_transaction_names_the_first_failing_write(items: ItemStore) -> None:
    items.put({"pk": P, "sk": "a"})
    with pytest.raises(ConditionFailed) as failed:
        items.transact(
            [
                Put({"pk": P, "sk": "x"}),
                Put({"pk": P, "sk": "a"}, Condition(exists=False)),
                Put({"pk": P, "sk": "y"}, Condition(exists=True)),
            ]
        )
    assert failed.value.index == 1


def test_empty_transaction_is_a_no_op(items: ItemStore) -> None:
    items.transact([])
    assert list(items.query(P)) == []


def test_transaction_of_100_writes(items: ItemStore) -> None:
    items.transact([Put({"pk": P, "sk": f"i#{i:03d}"}) for i in range(100)])
    assert items.count(P, "i#") == 100


DIVERGENCE = (
    "SqliteItemStore.transact accepts what DynamoDB refuses, so code that works locally fails on AWS; "
    "proposed fix: the same checks at the top of transact()"
)


def test_transaction_refuses_more_than_100_writes(items: ItemStore) -> None:
    with pytest.raises(ValueError, match="100"):
        items.transact([Put({"pk": P, "sk": f"i#{i:03d}"}) for i in range(101)])
    assert items.count(P) == 0


def test_transaction_refuses_two_writes_to_one_item(items: ItemStore) -> None:
    items.put({"pk": P, "sk": "a", "n": 0})
    with pytest.raises(ValueError, match="once"):
        items.transact([Update((P, "a"), increment={"n": 1}), Update((P, "a"), increment={"n": 1})])
    assert items.get((P, "a")) == {"pk": P, "sk": "a", "n": 0}


# -- queries --------------------------------------------------------------------------------

IMAGES = [f"img#{i:03d}" for i in range(1, 11)]
# Neighbours that share characters with the prefix "img#" but must never be listed under it.
NEIGHBOURS = ["img", "img!", "img$", "imh", "ima#999", 'img"zz']
# Keys that do start with "img#" and sort at its edges.
EDGES = ["img#", "img#\uffff", "img#😀"]


@pytest.fixture
def listed(items: ItemStore) -> ItemStore:
    writes: list[Write] = []
    for i, sk in enumerate(IMAGES):
        # ord runs against sk, so the two indexes give different orders.
        writes.append(Put({"pk": P, "sk": sk, "lst": P, "ord": f"o#{100 - i:03d}", "i": i}))
    for sk in NEIGHBOURS + EDGES:
        writes.append(Put({"pk": P, "sk": sk}))  # no ord: not in the ord index
    writes.append(Put({"pk": P, "sk": "zzz", "lst": P, "ord": "o$"}))  # ord neighbour of "o#"
    writes.append(Put({"pk": P, "sk": "ord-edge", "lst": P, "ord": "o#"}))
    writes.append(Put({"pk": P, "sk": "unlisted", "ord": "o#050"}))  # an ord but no list: in none
    writes.append(Put({"pk": "T#0", "sk": "img#001", "lst": "T#0", "ord": "o#001"}))  # another list
    writes.append(Put({"pk": "T#2", "sk": "img#001", "lst": "T#2", "ord": "o#001"}))
    items.transact(writes)
    return items


IMG_PREFIX = sorted(IMAGES + EDGES)
BY_ORD = ["ord-edge", *reversed(IMAGES)]  # "o#" first, then o#091 ... o#100


def test_query_by_sk_prefix(listed: ItemStore) -> None:
    assert sks(listed.query(P, "img#")) == IMG_PREFIX
    assert sks(listed.query(P, "img#", descending=True)) == IMG_PREFIX[::-1]
    assert sks(listed.query(P, "img#00")) == IMAGES[:9]
    assert sks(listed.query(P, "img#010")) == ["img#010"]
    assert sks(listed.query(P, "img#0100")) == []
    assert sks(listed.query(P, "nothing")) == []


def test_query_without_prefix_lists_the_whole_partition(listed: ItemStore) -> None:
    everything = sorted([*IMAGES, *NEIGHBOURS, *EDGES, "zzz", "ord-edge", "unlisted"])
    assert sks(listed.query(P)) == everything
    assert sks(listed.query(P, descending=True)) == everything[::-1]
    assert sks(listed.query("T#9")) == []


def test_query_returns_whole_items(listed: ItemStore) -> None:
    first = next(iter(listed.query(P, "img#001")))
    assert first == {"pk": P, "sk": "img#001", "lst": P, "ord": "o#100", "i": 0}
    first_by_ord = next(iter(listed.query(P, "o#1", index="ord")))
    assert first_by_ord == first


def test_a_list_gathers_items_of_many_partitions(items: ItemStore) -> None:
    """A list (``lst``) is not a partition: each item keeps its own key, the list orders them."""
    items.transact(
        [Put({"pk": f"E#{i}", "sk": "E", "lst": "LIST", "ord": f"o#{i:02d}", "i": i}) for i in range(12)]
        + [Put({"pk": "E#x", "sk": "E", "lst": "OTHER", "ord": "o#05"})]
    )
    assert [item["pk"] for item in items.query("LIST", "o#", index="ord", descending=True, limit=3)] == [
        "E#11",
        "E#10",
        "E#9",
    ]
    assert [item["i"] for item in items.query("LIST", index="ord", after="o#09")] == [10, 11]
    assert items.count("LIST", index="ord") == 12
    assert items.count("E#3") == 1  # the item is still found by its own partition
    items.update(Update(("E#3", "E"), set={"lst": "OTHER"}))  # moving an item between lists
    assert items.count("LIST", index="ord") == 11
    assert [item["pk"] for item in items.query("OTHER", index="ord")] == ["E#3", "E#x"]
    items.update(Update(("E#3", "E"), set={"lst": None}))  # None: in no list
    assert items.count("OTHER", index="ord") == 1


def test_query_by_ord_prefix(listed: ItemStore) -> None:
    assert sks(listed.query(P, "o#", index="ord")) == BY_ORD
    assert sks(listed.query(P, "o#", index="ord", descending=True)) == BY_ORD[::-1]
    assert sks(listed.query(P, "o#09", index="ord")) == IMAGES[:0:-1]  # o#091..o#099
    assert sks(listed.query(P, "o#10", index="ord")) == ["img#001"]
    # Items without ord are not in the ord index at all.
    assert sks(listed.query(P, index="ord")) == [*BY_ORD, "zzz"]


@pytest.mark.parametrize("index", ["sk", "ord"])
@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("page", [1, 3, 4])
def test_after_continues_exactly_where_a_page_stopped(
    listed: ItemStore, index: str, descending: bool, page: int
) -> None:
    prefix = "img#" if index == "sk" else "o#"
    everything = sks(listed.query(P, prefix, index=index, descending=descending))  # type: ignore[arg-type]
    collected: list[str] = []
    after = None
    while True:
        chunk = list(listed.query(P, prefix, index=index, after=after, descending=descending, limit=page))  # type: ignore[arg-type]
        assert len(chunk) <= page
        if not chunk:
            break
        collected += sks(chunk)
        after = chunk[-1][index]
    assert collected == everything


def test_after_values_that_are_not_stored(listed: ItemStore) -> None:
    assert sks(listed.query(P, "img#", after="img#0055")) == [
        "img#006",
        "img#007",
        "img#008",
        "img#009",
        "img#010",
        "img#\uffff",
        "img#😀",
    ]
    assert sks(listed.query(P, "img#", after="img#0055", descending=True)) == [
        "img#005",
        "img#004",
        "img#003",
        "img#002",
        "img#001",
        "img#",
    ]
    # An ``after`` outside the prefix: before it lets everything through, past it nothing.
    assert sks(listed.query(P, "img#", after="a")) == IMG_PREFIX
    assert sks(listed.query(P, "img#", after="z")) == []
    assert sks(listed.query(P, "img#", after="z", descending=True)) == IMG_PREFIX[::-1]
    assert sks(listed.query(P, "img#", after="a", descending=True)) == []
    # The prefix itself as ``after``: everything strictly past it.
    assert sks(listed.query(P, "img#", after="img#")) == IMG_PREFIX[1:]
    assert sks(listed.query(P, "img#", after="img#", descending=True)) == []
    assert sks(listed.query(P, "", after="zz")) == ["zzz"]
    assert sks(listed.query(P, "", after="zzz")) == []
    assert sks(listed.query(P, "", after="img#010", limit=2)) == ["img#\uffff", "img#😀"]
    assert sks(listed.query(P, "", after="img!", descending=True)) == ["img", "ima#999"]


def test_limit(listed: ItemStore) -> None:
    assert sks(listed.query(P, "img#", limit=3)) == IMG_PREFIX[:3]
    assert sks(listed.query(P, "img#", limit=2, descending=True)) == IMG_PREFIX[::-1][:2]
    assert sks(listed.query(P, "o#", index="ord", limit=2)) == BY_ORD[:2]
    assert sks(listed.query(P, "img#", limit=100)) == IMG_PREFIX


def test_limit_zero_yields_nothing(listed: ItemStore) -> None:
    assert sks(listed.query(P, "img#", limit=0)) == []


def test_count(listed: ItemStore) -> None:
    assert listed.count(P, "img#") == len(IMG_PREFIX)
    assert listed.count(P, "img#00") == 9
    assert listed.count(P, "o#", index="ord") == len(BY_ORD)
    assert listed.count(P, index="ord") == len(BY_ORD) + 1
    assert listed.count(P) == len(IMAGES) + len(NEIGHBOURS) + len(EDGES) + 3
    assert listed.count("T#9") == 0
    assert listed.count(P, "nothing") == 0


@pytest.fixture
def bulk(item_backend: ItemBackend) -> int:
    """``item_backend.bulk`` items in partition BULK (sk n#..., ord o#... in reverse), plus neighbours."""
    store, n = item_backend.store, item_backend.bulk
    puts = [Put({"pk": "BULK", "sk": f"n#{i:05d}", "lst": "BULK", "ord": f"o#{n - i:05d}"}) for i in range(n)]
    puts += [Put({"pk": "BULK", "sk": sk, "lst": "BULK", "ord": sk}) for sk in ("m#0", "n", "n$", "o", "o$", "p")]
    for start in range(0, len(puts), 100):
        store.transact(puts[start : start + 100])
    return n


def test_queries_span_several_internal_pages(item_backend: ItemBackend, bulk: int) -> None:
    store = item_backend.store
    before = item_backend.query_requests() if item_backend.query_requests else 0
    expected = [f"n#{i:05d}" for i in range(bulk)]
    assert sks(store.query("BULK", "n#")) == expected
    if item_backend.query_requests:
        assert item_backend.query_requests() - before > 2  # the adapter really paged
    assert sks(store.query("BULK", "n#", descending=True)) == expected[::-1]
    assert sks(store.query("BULK", "o#", index="ord")) == expected[::-1]
    assert sks(store.query("BULK", "o#", index="ord", descending=True)) == expected
    middle = bulk // 2
    assert sks(store.query("BULK", "n#", after=expected[middle])) == expected[middle + 1 :]
    assert sks(store.query("BULK", "n#", after=expected[middle], descending=True)) == expected[:middle][::-1]
    assert sks(store.query("BULK", "n#", limit=bulk - 3)) == expected[: bulk - 3]
    assert store.count("BULK", "n#") == bulk
    assert store.count("BULK", "o#", index="ord") == bulk
    assert store.count("BULK") == bulk + 6


def test_ord_ties_survive_internal_paging(item_backend: ItemBackend) -> None:
    store, n = item_backend.store, item_backend.bulk
    puts = [Put({"pk": "TIES", "sk": f"s#{i:05d}", "lst": "TIES", "ord": "same"}) for i in range(n)]
    for start in range(0, n, 100):
        store.transact(puts[start : start + 100])
    expected = [f"s#{i:05d}" for i in range(n)]
    # The order among equal ord values is not part of the contract; that none is lost is.
    assert sorted(sks(store.query("TIES", index="ord"))) == expected
    assert sorted(sks(store.query("TIES", "sa", index="ord", descending=True))) == expected
    assert store.count("TIES", index="ord") == n


# -- batch get ------------------------------------------------------------------------------


def test_batch_get_keeps_the_order_asked_and_skips_missing_keys(items: ItemStore) -> None:
    items.transact([Put({"pk": P, "sk": f"k#{i:03d}", "i": i}) for i in range(60)])
    items.transact([Put({"pk": P, "sk": f"k#{i:03d}", "i": i}) for i in range(60, 120)])
    wanted = [(P, f"k#{i:03d}") for i in range(130, -1, -1)]  # reversed, 11 of them missing
    wanted.insert(5, ("T#nowhere", "k#001"))
    found = items.batch_get(wanted)
    assert [item["i"] for item in found] == list(range(119, -1, -1))
    assert found[0] == {"pk": P, "sk": "k#119", "i": 119}
    assert items.batch_get([]) == []
    assert items.batch_get([(P, "missing")]) == []


def test_batch_get_of_a_repeated_key(items: ItemStore) -> None:
    items.put({"pk": P, "sk": "a", "m": {"x": 1}})
    items.put({"pk": P, "sk": "b"})
    found = items.batch_get([(P, "a"), (P, "b"), (P, "a")])
    assert sks(found) == ["a", "b", "a"]
    found[0]["m"]["x"] = 2  # each result is its own dict
    assert found[2]["m"] == {"x": 1}


# -- concurrency ----------------------------------------------------------------------------


def _in_threads(work: Callable[[int], None], threads: int = 8) -> None:
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            work(n)
        except BaseException as error:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(error)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []


def test_concurrent_increments_are_never_lost(items: ItemStore) -> None:
    def work(_: int) -> None:
        for _ in range(25):
            items.update(Update((P, "counter"), increment={"n": 1}, upsert=True))

    _in_threads(work)
    assert items.get((P, "counter")) == {"pk": P, "sk": "counter", "n": 200}


def test_concurrent_transactions_keep_counters_consistent(items: ItemStore) -> None:
    items.put({"pk": P, "sk": "total", "n": 0})

    def work(worker: int) -> None:
        for i in range(10):
            items.transact(
                [
                    Put({"pk": P, "sk": f"e#{worker}-{i}"}, Condition(exists=False)),
                    Update((P, "total"), increment={"n": 1}),
                ]
            )

    _in_threads(work)
    assert items.get((P, "total")) == {"pk": P, "sk": "total", "n": 80}
    assert items.count(P, "e#") == 80


def test_concurrent_map_sets_on_a_map_that_does_not_exist_yet(items: ItemStore) -> None:
    # Every writer starts on an item without the map: the first creates it, none may be lost.
    items.put({"pk": P, "sk": "m"})

    def work(worker: int) -> None:
        for i in range(5):
            items.update(Update((P, "m"), map_set={"labels": {f"{worker}-{i}": i}}))

    _in_threads(work)
    item = items.get((P, "m"))
    assert item is not None
    assert sorted(item["labels"]) == sorted(f"{w}-{i}" for w in range(8) for i in range(5))


# -- DynamoDB adapter: answers real DynamoDB gives that moto does not -----------------------


class _Faulty:
    """Wraps a moto client; ``faults[operation]`` are raised (or returned) before delegating."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.faults: dict[str, list[Callable[[dict[str, Any]], Any]]] = {}
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            pending = self.faults.get(name)
            if pending:
                return pending.pop(0)(kwargs)
            return target(**kwargs)

        return call


def _cancelled(*codes: str, message: str = "") -> Callable[[dict[str, Any]], Any]:
    def fault(_: dict[str, Any]) -> Any:
        reasons = [{"Code": code, "Message": message} if code != "None" else {"Code": "None"} for code in codes]
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": reasons,
            },
            "TransactWriteItems",
        )

    return fault


@pytest.fixture
def faulty(
    dynamodb_client: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DynamoItemStore, _Faulty, list[int]]]:
    table = f"kestrel-faulty-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb_client, table)
    client = _Faulty(dynamodb_client)
    backoffs: list[int] = []
    monkeypatch.setattr(dynamo_items, "_backoff", backoffs.append)  # record instead of sleeping
    yield DynamoItemStore(table, client), client, backoffs
    dynamodb_client.delete_table(TableName=table)


@pytest.mark.aws
def test_dynamodb_retries_transaction_conflicts(faulty: tuple[DynamoItemStore, _Faulty, list[int]]) -> None:
    store, client, backoffs = faulty
    client.faults["transact_write_items"] = [
        _cancelled("None", "TransactionConflict"),
        _cancelled("ThrottlingError", "None"),
    ]
    store.transact([Put({"pk": P, "sk": "a"}), Update((P, "b"), increment={"n": 1}, upsert=True)])
    assert store.get((P, "b")) == {"pk": P, "sk": "b", "n": 1}
    assert client.calls["transact_write_items"] == 3
    assert backoffs == [0, 1]


@pytest.mark.aws
def test_dynamodb_gives_up_after_repeated_conflicts(
    faulty: tuple[DynamoItemStore, _Faulty, list[int]],
) -> None:
    store, client, backoffs = faulty
    client.faults["transact_write_items"] = [_cancelled("TransactionConflict")] * 20
    with pytest.raises(StoreBusy):
        store.transact([Put({"pk": P, "sk": "a"})])
    assert store.get((P, "a")) is None
    assert len(backoffs) == client.calls["transact_write_items"] == 8


@pytest.mark.aws
def test_dynamodb_condition_failure_wins_over_conflicts(
    faulty: tuple[DynamoItemStore, _Faulty, list[int]],
) -> None:
    store, client, backoffs = faulty
    client.faults["transact_write_items"] = [_cancelled("TransactionConflict", "ConditionalCheckFailed")]
    with pytest.raises(ConditionFailed) as failed:
        store.transact([Put({"pk": P, "sk": "a"}), Put({"pk": P, "sk": "b"})])
    assert failed.value.index == 1
    assert backoffs == []


@pytest.mark.aws
def test_dynamodb_missing_map_reported_as_a_cancellation_reason(
    faulty: tuple[DynamoItemStore, _Faulty, list[int]],
) -> None:
    # Real DynamoDB reports a bad document path inside a transaction as a ValidationError
    # cancellation reason (moto raises a bare ValidationException instead).
    store, client, _ = faulty
    store.put({"pk": P, "sk": "m"})
    path_error = "The document path provided in the update expression is invalid for update"
    client.faults["transact_write_items"] = [_cancelled("None", "ValidationError", message=path_error)]
    store.transact([Put({"pk": P, "sk": "x"}), Update((P, "m"), map_set={"labels": {"a": 1}})])
    assert store.get((P, "m")) == {"pk": P, "sk": "m", "labels": {"a": 1}}
    assert client.calls["transact_write_items"] == 2


@pytest.mark.aws
def test_dynamodb_other_validation_errors_are_not_swallowed(
    faulty: tuple[DynamoItemStore, _Faulty, list[int]],
) -> None:
    store, client, _ = faulty
    client.faults["transact_write_items"] = [
        _cancelled("ValidationError", message="Item size has exceeded the maximum")
    ]
    with pytest.raises(ClientError):
        store.transact([Update((P, "m"), map_set={"labels": {"a": 1}}, upsert=True)])
    assert client.calls["transact_write_items"] == 1


@pytest.mark.aws
def test_dynamodb_retries_a_conflicting_single_update(
    faulty: tuple[DynamoItemStore, _Faulty, list[int]],
) -> None:
    store, client, backoffs = faulty

    def conflict(_: dict[str, Any]) -> Any:
        raise ClientError({"Error": {"Code": "TransactionConflictException", "Message": "busy"}}, "UpdateItem")

    client.faults["update_item"] = [conflict]
    assert store.update(Update((P, "c"), increment={"n": 1}, upsert=True))["n"] == 1
    assert backoffs == [0]


@pytest.mark.aws
def test_dynamodb_batch_get_asks_again_for_unprocessed_keys(
    faulty: tuple[DynamoItemStore, _Faulty, list[int]], dynamodb_client: Any
) -> None:
    store, client, backoffs = faulty
    store.transact([Put({"pk": P, "sk": f"k#{i:03d}", "i": i}) for i in range(100)])
    store.transact([Put({"pk": P, "sk": f"k#{i:03d}", "i": i}) for i in range(100, 150)])

    def half_processed(kwargs: dict[str, Any]) -> Any:
        ((table, request),) = kwargs["RequestItems"].items()
        assert request["ConsistentRead"] is True
        assert len(request["Keys"]) <= 100
        done, left = request["Keys"][::2], request["Keys"][1::2]
        answer = dynamodb_client.batch_get_item(RequestItems={table: {**request, "Keys": done}})
        answer["UnprocessedKeys"] = {table: {**request, "Keys": left}}
        return answer

    client.faults["batch_get_item"] = [half_processed, half_processed]
    keys = [(P, f"k#{i:03d}") for i in range(149, -1, -1)]
    assert [item["i"] for item in store.batch_get(keys)] == list(range(149, -1, -1))
    # First chunk of 100: half, then a quarter left over, then done; second chunk at once.
    assert client.calls["batch_get_item"] == 4
    assert backoffs == [0, 1]  # the back-off grows while keys stay unprocessed
