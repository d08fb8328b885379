"""DynamoDB request building, without DynamoDB: the pure half of the DynamoDB item store.

The contract suite (tests/contract) proves the whole adapter under moto; these pin down what
each request says, and that folding an Update into one action per attribute keeps the meaning
``item_rules.apply_update`` gives it.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from kestrel.adapters.dynamo_expressions import (
    NOOP,
    Changes,
    Expr,
    changes_of,
    condition_parts,
    deserialize,
    item_from_dynamo,
    item_to_dynamo,
    map_shapes,
    query_params,
    serialize,
    successor,
    update_allowed,
    update_params,
)
from kestrel.adapters.item_rules import apply_update
from kestrel.ports.items import ORD, PK, SK, Condition, Item, Update

KEY = ("O#1", "T#1")

# -- values ---------------------------------------------------------------------------------


def test_values_round_trip_with_floats_exact_and_integral_numbers_as_int() -> None:
    value = {"f": 0.1, "i": 3, "whole": 2.0, "nested": [1.5, {"b": True, "n": None, "s": "x"}]}
    assert serialize(0.1) == {"N": "0.1"}
    assert deserialize(serialize(value)) == {
        "f": 0.1,
        "i": 3,
        "whole": 2,
        "nested": [1.5, {"b": True, "n": None, "s": "x"}],
    }
    assert isinstance(deserialize({"N": "7"}), int) and deserialize({"N": "7.25"}) == 7.25


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_floats_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="cannot store"):
        serialize({"x": bad})


def test_an_unindexed_ord_is_left_out_of_the_item() -> None:
    raw = item_to_dynamo({PK: "p", SK: "s", ORD: None, "n": Decimal(1)})
    assert raw == {PK: {"S": "p"}, SK: {"S": "s"}, "n": {"N": "1"}}
    assert item_from_dynamo(raw) == {PK: "p", SK: "s", "n": 1}


# -- placeholders and conditions ------------------------------------------------------------


def test_each_name_has_one_placeholder_and_each_value_its_own() -> None:
    expr = Expr()
    assert [expr.name("a"), expr.name("b"), expr.name("a")] == ["#n0", "#n1", "#n0"]
    assert [expr.value(1), expr.value(1)] == [":v0", ":v1"]
    assert expr.params() == {
        "ExpressionAttributeNames": {"#n0": "a", "#n1": "b"},
        "ExpressionAttributeValues": {":v0": {"N": "1"}, ":v1": {"N": "1"}},
    }
    assert Expr().params() == {}


@pytest.mark.parametrize(
    ("condition", "must_exist", "expected"),
    [
        (None, False, []),
        (None, True, ["attribute_exists(#n0)"]),
        (Condition(exists=False), False, ["attribute_not_exists(#n0)"]),
        (Condition(exists=True), False, ["attribute_exists(#n0)"]),
        (Condition(equals={"v": 2}), False, ["attribute_exists(#n0)", "#n1 = :v0"]),
        (
            Condition(equals={"v": None}),
            False,
            ["attribute_exists(#n0)", "(attribute_not_exists(#n1) OR #n1 = :v0)"],
        ),
        (Condition(map_has=("m", "k")), False, ["attribute_exists(#n0)", "attribute_exists(#n1.#n2)"]),
        (Condition(map_lacks=("m", "k")), False, ["attribute_not_exists(#n0.#n1)"]),
    ],
)
def test_condition_parts(condition: Condition | None, must_exist: bool, expected: list[str]) -> None:
    assert condition_parts(Expr(), condition, must_exist=must_exist) == expected


def test_update_allowed_follows_item_rules() -> None:
    update = Update(KEY, set={"a": 1}, condition=Condition(equals={"v": 1}))
    assert update_allowed(update, {"v": 1}) and not update_allowed(update, {"v": 2})
    assert not update_allowed(update, None)
    assert update_allowed(Update(KEY, set={"a": 1}, upsert=True), None)


# -- folding an Update ----------------------------------------------------------------------


def apply_changes(current: Item | None, key: tuple[str, str], changes: Changes) -> Item:
    """What DynamoDB does with the folded actions, when every touched map exists or is absent."""
    item: dict[str, Any] = copy.deepcopy(current) if current is not None else {}
    item[PK], item[SK] = key
    item.update(copy.deepcopy(changes.sets))
    for name in changes.removes:
        item.pop(name, None)
    for name, delta in changes.increments.items():
        item[name] = int(item.get(name) or 0) + delta
    for name in changes.map_names:
        target = item.get(name)
        if not isinstance(target, dict):
            if name in changes.map_sets:
                item[name] = dict(changes.map_sets[name])
            continue
        target.update(changes.map_sets.get(name, {}))
        for entry in changes.map_removes.get(name, []):
            target.pop(entry, None)
    return item


UPDATES = {
    "set then remove: the removal wins": Update(KEY, set={"a": 1, "b": 2}, remove=["a"]),
    "increment a value it sets": Update(KEY, set={"n": 5}, increment={"n": 2}),
    "increment a value it removes": Update(KEY, remove=["n"], increment={"n": 3}),
    "plain increment": Update(KEY, increment={"n": -1}),
    "map_set onto a map it sets": Update(KEY, set={"m": {"x": 1}}, map_set={"m": {"y": 2}}),
    "map_set after removing the map": Update(KEY, remove=["m"], map_set={"m": {"y": 2}}),
    "map_remove from a map it sets": Update(KEY, set={"m": {"x": 1, "y": 2}}, map_remove={"m": ["x"]}),
    "map_remove from a removed map": Update(KEY, remove=["m"], map_remove={"m": ["x"]}),
    "map_set and map_remove of one key": Update(KEY, map_set={"m": {"x": 1, "z": 3}}, map_remove={"m": ["x", "x"]}),
    "ord None means not indexed": Update(KEY, set={ORD: None, "a": 1}),
    "everything at once": Update(
        KEY, set={"a": 1}, remove=["b"], increment={"n": 1}, map_set={"m": {"k": 1}}, map_remove={"o": ["j"]}
    ),
}
ITEMS = {
    "bare": {PK: KEY[0], SK: KEY[1]},
    "full": {PK: KEY[0], SK: KEY[1], "a": 0, "b": 9, "n": 10, "m": {"x": 0, "q": 1}, "o": {"j": 1, "i": 2}, ORD: "1"},
}


@pytest.mark.parametrize("item", list(ITEMS))
@pytest.mark.parametrize("name", list(UPDATES))
def test_folded_changes_mean_what_item_rules_says(name: str, item: str) -> None:
    update, current = UPDATES[name], ITEMS[item]
    expected = apply_update(current, update)
    if ORD in update.set and update.set[ORD] is None:
        expected.pop(ORD)  # item_rules keeps None; DynamoDB cannot index it, so it is removed
    assert apply_changes(current, KEY, changes_of(update)) == expected


def test_folding_touches_each_attribute_once() -> None:
    changes = changes_of(UPDATES["map_set and map_remove of one key"])
    assert changes.map_sets == {"m": {"z": 3}} and changes.map_removes == {"m": ["x"]}
    assert changes_of(UPDATES["increment a value it removes"]) == Changes(sets={"n": 3})
    assert changes_of(UPDATES["ord None means not indexed"]).removes == [ORD]
    assert changes_of(Update(KEY)).empty


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (Update(KEY, set={PK: "other"}), "key attributes"),
        (Update(KEY, increment={"m": 1}, map_set={"m": {"k": 1}}), "both increment and map_set"),
        (Update(KEY, increment={"m": 1}, map_remove={"m": ["k"]}), "both increment and map_remove"),
        (Update(KEY, set={"m": 3}, map_set={"m": {"k": 1}}), "sets to a non-map"),
    ],
)
def test_updates_that_cannot_mean_anything_are_refused(update: Update, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        changes_of(update)


def test_map_shapes_say_which_touched_maps_exist() -> None:
    changes = changes_of(Update(KEY, map_set={"m": {"k": 1}}, map_remove={"o": ["j"]}))
    assert map_shapes(changes, {"m": {}, "o": 3}) == {"m": True, "o": False}
    assert map_shapes(changes, None) == {"m": False, "o": False}


# -- update requests ------------------------------------------------------------------------


def test_an_optimistic_update_writes_nested_paths_without_guards() -> None:
    update = Update(KEY, set={"a": 1}, increment={"n": 2}, map_set={"m": {"k": "v"}}, condition=Condition(exists=True))
    params = update_params(update, changes_of(update), None)
    assert params["Key"] == {PK: {"S": "O#1"}, SK: {"S": "T#1"}}
    assert params["UpdateExpression"] == "SET #n0 = :v0, #n1 = if_not_exists(#n1, :v1) + :v2, #n2.#n3 = :v3"
    assert params["ConditionExpression"] == "attribute_exists(#n4)"
    assert params["ExpressionAttributeNames"] == {"#n0": "a", "#n1": "n", "#n2": "m", "#n3": "k", "#n4": PK}
    assert "ReturnValuesOnConditionCheckFailure" not in params


def test_a_pinned_missing_map_is_written_whole_behind_a_guard() -> None:
    update = Update(KEY, map_set={"m": {"k": 1}}, map_remove={"o": ["j"]})
    params = update_params(update, changes_of(update), {"m": False, "o": False})
    assert params["UpdateExpression"] == "SET #n0 = :v1"  # "o" missing: nothing to remove
    assert params["ConditionExpression"] == (
        "attribute_exists(#n2) AND NOT attribute_type(#n0, :v0) AND NOT attribute_type(#n1, :v2)"
    )
    assert params["ExpressionAttributeValues"][":v1"] == {"M": {"k": {"N": "1"}}}
    assert params["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


def test_an_update_that_changes_nothing_still_checks_its_condition() -> None:
    update = Update(KEY, upsert=True, condition=Condition(equals={"v": 1}))
    params = update_params(update, changes_of(update), None)
    assert params["UpdateExpression"] == "REMOVE #n0"
    assert params["ExpressionAttributeNames"]["#n0"] == NOOP
    assert params["ConditionExpression"] == "attribute_exists(#n1) AND #n2 = :v0"


# -- key ranges -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("a", "b"), ("ab", "ac"), ("", None), ("\U0010ffff", None), ("a\U0010ffff", "b"), ("a\ud7ff", "a\ue000")],
)
def test_successor(prefix: str, expected: str | None) -> None:
    assert successor(prefix) == expected


def condition_of(params: tuple[dict[str, Any], frozenset[str]] | None) -> tuple[str, frozenset[str]]:
    assert params is not None
    request, skip = params
    text = request["KeyConditionExpression"]
    for placeholder, value in request.get("ExpressionAttributeValues", {}).items():
        text = text.replace(placeholder, repr(value["S"]))
    for placeholder, name in request["ExpressionAttributeNames"].items():
        text = text.replace(placeholder, name)
    return text, skip


def test_a_prefix_is_begins_with() -> None:
    assert condition_of(query_params("P", SK, "I#", None, False)) == ("pk = 'P' AND begins_with(sk, 'I#')", frozenset())
    assert condition_of(query_params("P", ORD, "", None, True)) == ("pk = 'P'", frozenset())


def test_after_narrows_one_end_and_skips_the_open_bound() -> None:
    assert condition_of(query_params("P", SK, "I#", "I#5", False)) == (
        "pk = 'P' AND sk BETWEEN 'I#5' AND 'I$'",
        frozenset({"I#5", "I$"}),
    )
    assert condition_of(query_params("P", SK, "I#", "I#5", True)) == (
        "pk = 'P' AND sk BETWEEN 'I#' AND 'I#5'",
        frozenset({"I#5"}),
    )
    assert condition_of(query_params("P", SK, "", "m", False)) == ("pk = 'P' AND sk > 'm'", frozenset())
    assert condition_of(query_params("P", SK, "", "m", True)) == ("pk = 'P' AND sk < 'm'", frozenset())


def test_a_range_that_cannot_hold_anything_is_none() -> None:
    assert query_params("P", SK, "I#", "J", False) is None
    assert query_params("P", SK, "I#", "H", True) is None
