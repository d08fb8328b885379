"""DynamoDB request building, pure: values, expressions, updates and key ranges.

No I/O: each function turns the item store port's vocabulary (Condition, Update, a key prefix)
into the parts of a DynamoDB request with the same meaning as :mod:`kestrel.adapters.item_rules`.
:mod:`kestrel.adapters.dynamo_items` sends them; tests/unit/adapters tests them without moto.

Every name and value goes through a placeholder (``Expr``), so no attribute name can clash with
a reserved word and no value needs escaping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from kestrel.adapters.item_rules import condition_holds
from kestrel.ports.items import LIST, ORD, PK, SK, Condition, Item, Key, Update

NOOP = "kestrel_noop"  # an attribute never stored: "REMOVE" of it makes an update that changes nothing

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


# -- values ---------------------------------------------------------------------------------


def _to_dynamo(value: Any) -> Any:
    """Floats become Decimals (the serializer refuses floats); repr() keeps them exact."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"DynamoDB cannot store {value!r}")
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {str(k): _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    """Numbers come back as Decimal: integral ones become int, the rest float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def serialize(value: Any) -> dict[str, Any]:
    """One Python value as a DynamoDB AttributeValue."""
    result: dict[str, Any] = _SERIALIZER.serialize(_to_dynamo(value))
    return result


def deserialize(value: dict[str, Any]) -> Any:
    """One DynamoDB AttributeValue as a Python value."""
    return _from_dynamo(_DESERIALIZER.deserialize(value))


def item_to_dynamo(item: Item) -> dict[str, Any]:
    # SQLite keeps ``ord: None`` as "not indexed"; DynamoDB refuses a NULL index key, so drop it.
    return {name: serialize(value) for name, value in item.items() if not (name in (LIST, ORD) and value is None)}


def item_from_dynamo(raw: dict[str, Any]) -> Item:
    return {name: deserialize(value) for name, value in raw.items()}


def key_to_dynamo(key: Key) -> dict[str, Any]:
    return {PK: {"S": key[0]}, SK: {"S": key[1]}}


# -- expressions ----------------------------------------------------------------------------


class Expr:
    """Placeholders for one request: every name and value goes through one, so no attribute name
    can clash with a reserved word and no value needs escaping."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # placeholder -> attribute name
        self._by_name: dict[str, str] = {}
        self.values: dict[str, dict[str, Any]] = {}

    def name(self, attribute: str) -> str:
        placeholder = self._by_name.get(attribute)
        if placeholder is None:
            placeholder = f"#n{len(self._by_name)}"
            self._by_name[attribute] = placeholder
            self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = serialize(value)
        return placeholder

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.names:
            params["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            params["ExpressionAttributeValues"] = dict(self.values)
        return params


def condition_parts(expr: Expr, condition: Condition | None, *, must_exist: bool = False) -> list[str]:
    """The parts (to be ANDed) that mean what ``item_rules.condition_holds`` means."""
    parts: list[str] = []
    needs_item = must_exist or (
        condition is not None and (condition.exists is True or bool(condition.equals) or bool(condition.map_has))
    )
    if needs_item:
        parts.append(f"attribute_exists({expr.name(PK)})")
    if condition is None:
        return parts
    if condition.exists is False:
        parts.append(f"attribute_not_exists({expr.name(PK)})")
    for name, value in condition.equals.items():
        attribute = expr.name(name)
        if value is None:
            # item_rules compares with dict.get(): a missing attribute equals None.
            parts.append(f"(attribute_not_exists({attribute}) OR {attribute} = {expr.value(None)})")
        else:
            parts.append(f"{attribute} = {expr.value(value)}")
    if condition.map_has is not None:
        name, key = condition.map_has
        parts.append(f"attribute_exists({expr.name(name)}.{expr.name(key)})")
    if condition.map_lacks is not None:
        name, key = condition.map_lacks
        parts.append(f"attribute_not_exists({expr.name(name)}.{expr.name(key)})")
    return parts


def condition_params(expr: Expr, parts: list[str]) -> dict[str, Any]:
    return {"ConditionExpression": " AND ".join(parts)} if parts else {}


@dataclass
class Changes:
    """An Update reduced so that each attribute is touched by one kind of action, with the result
    ``item_rules.apply_update`` gives (set, then remove, increment, map_set, map_remove).
    DynamoDB refuses overlapping document paths in one expression, so the overlaps are folded
    here instead."""

    sets: dict[str, Any] = field(default_factory=dict)
    removes: list[str] = field(default_factory=list)
    increments: dict[str, int] = field(default_factory=dict)
    map_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    map_removes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def map_names(self) -> list[str]:
        return list(dict.fromkeys([*self.map_sets, *self.map_removes]))

    @property
    def empty(self) -> bool:
        return not (self.sets or self.removes or self.increments or self.map_names)


def changes_of(update: Update) -> Changes:
    """Fold ``update`` into one action per attribute, in item_rules' order: set, then remove,
    increment, map_set, map_remove (each step sees what the earlier ones did)."""
    touched = {*update.set, *update.remove, *update.increment, *update.map_set, *update.map_remove}
    if touched & {PK, SK}:
        raise ValueError("an Update cannot change the key attributes pk and sk")
    changes = _sets_and_removes(update)
    for name, delta in update.increment.items():
        _fold_increment(changes, name, delta)
    for name, entries in update.map_set.items():
        _fold_map_set(changes, name, entries)
    for name, keys in update.map_remove.items():
        _fold_map_remove(changes, name, list(dict.fromkeys(keys)))
    return changes


def _sets_and_removes(update: Update) -> Changes:
    sets = dict(update.set)
    removes = list(dict.fromkeys(update.remove))
    for name in removes:
        sets.pop(name, None)  # set, then remove: the removal wins
    for name in (LIST, ORD):
        if name in sets and sets[name] is None:
            # ``None`` means "not indexed" (see item_to_dynamo): remove it instead.
            del sets[name]
            removes.append(name)
    return Changes(sets=sets, removes=removes)


def _fold_increment(changes: Changes, name: str, delta: int) -> None:
    sets, removes = changes.sets, changes.removes
    if name in sets:
        sets[name] = int(sets[name] or 0) + delta
    elif name in removes:
        removes.remove(name)  # removed, then incremented: starts again from 0
        sets[name] = delta
    else:
        changes.increments[name] = delta


def _fold_map_set(changes: Changes, name: str, entries: dict[str, Any]) -> None:
    sets, removes = changes.sets, changes.removes
    if name in changes.increments:
        raise ValueError(f"an Update cannot both increment and map_set {name!r}")
    if name in sets:
        if not isinstance(sets[name], dict):
            raise ValueError(f"an Update cannot map_set {name!r}, which it sets to a non-map")
        sets[name] = {**sets[name], **entries}
    elif name in removes:
        removes.remove(name)  # removed, then map_set: a new map of just these entries
        sets[name] = dict(entries)
    else:
        changes.map_sets[name] = dict(entries)


def _fold_map_remove(changes: Changes, name: str, keys: list[str]) -> None:
    sets = changes.sets
    if name in changes.increments:
        raise ValueError(f"an Update cannot both increment and map_remove {name!r}")
    if name in sets:
        if isinstance(sets[name], dict):
            sets[name] = {k: v for k, v in sets[name].items() if k not in keys}
        return
    if name in changes.removes:
        return  # removing keys of a removed map changes nothing
    changes.map_removes[name] = keys
    if name in changes.map_sets:
        kept = changes.map_sets[name]
        changes.map_sets[name] = {k: v for k, v in kept.items() if k not in keys}


def map_shapes(changes: Changes, item: Item | None) -> dict[str, bool]:
    """For each map the update touches: is it a map on ``item`` right now?"""
    current = item or {}
    return {name: isinstance(current.get(name), dict) for name in changes.map_names}


def update_allowed(update: Update, current: Item | None) -> bool:
    """Whether the caller's own requirements hold on ``current`` (item_rules' meaning)."""
    if current is None and not update.upsert:
        return False
    return condition_holds(current, update.condition)


def update_params(update: Update, changes: Changes, shapes: dict[str, bool] | None) -> dict[str, Any]:
    """Key, UpdateExpression, ConditionExpression and placeholders for one Update.

    ``shapes`` None: assume every touched map exists (no read, no guard). Otherwise pin each
    map's shape with a guard and write it accordingly (see kestrel.adapters.dynamo_items)."""
    expr = Expr()
    assignments: list[str] = []
    removals: list[str] = []
    for name, value in changes.sets.items():
        assignments.append(f"{expr.name(name)} = {expr.value(value)}")
    for name in changes.removes:
        removals.append(expr.name(name))
    for name, delta in changes.increments.items():
        attribute = expr.name(name)
        assignments.append(f"{attribute} = if_not_exists({attribute}, {expr.value(0)}) + {expr.value(delta)}")
    guards = _map_actions(expr, changes, shapes, assignments, removals)
    if not assignments and not removals:
        # An update that changes nothing still checks its condition (and creates on upsert).
        removals.append(expr.name(NOOP))
    clauses = []
    if assignments:
        clauses.append("SET " + ", ".join(assignments))
    if removals:
        clauses.append("REMOVE " + ", ".join(removals))
    parts = condition_parts(expr, update.condition, must_exist=not update.upsert) + guards
    params: dict[str, Any] = {
        "Key": key_to_dynamo(update.key),
        "UpdateExpression": " ".join(clauses),
        **condition_params(expr, parts),
    }
    if shapes is not None:
        params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    params.update(expr.params())
    return params


def _map_actions(
    expr: Expr, changes: Changes, shapes: dict[str, bool] | None, assignments: list[str], removals: list[str]
) -> list[str]:
    """Add the map writes to ``assignments`` and ``removals``; return the shape guards."""
    guards: list[str] = []
    for name in changes.map_names:
        attribute = expr.name(name)
        entries = changes.map_sets.get(name)
        is_map = True if shapes is None else shapes[name]
        if shapes is not None:
            guard = f"attribute_type({attribute}, {expr.value('M')})"
            guards.append(guard if is_map else f"NOT {guard}")
        if is_map:
            for key, value in (entries or {}).items():
                assignments.append(f"{attribute}.{expr.name(key)} = {expr.value(value)}")
            for key in changes.map_removes.get(name, ()):
                removals.append(f"{attribute}.{expr.name(key)}")
        elif entries is not None:
            # No map yet: write the whole map (its removed keys are already left out).
            assignments.append(f"{attribute} = {expr.value(entries)}")
        # No map and only removals: nothing to do, as in item_rules.
    return guards


# -- key ranges -----------------------------------------------------------------------------


def successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``; None when
    there is none (an empty prefix, or only U+10FFFF). DynamoDB and SQLite both order strings by
    UTF-8 bytes, which is code point order."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000  # surrogates cannot be stored; skip over them
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


@dataclass(frozen=True)
class KeyRange:
    condition: str | None  # the sort key part of the KeyConditionExpression
    skip: frozenset[str] = frozenset()  # bound values the condition lets through but must not be returned


def key_range(expr: Expr, attribute: str, prefix: str, after: str | None, descending: bool) -> KeyRange | None:
    """The exact key condition for "starts with ``prefix`` and is past ``after``"; None if empty.

    ``begins_with`` cannot be combined with another range in a KeyConditionExpression, and
    BETWEEN is inclusive at both ends, so a prefix becomes [prefix, successor) and an ``after``
    narrows one end; BETWEEN then admits the open ends, which ``skip`` drops again (at most the
    boundary values, so no page is wasted)."""
    low, low_open = prefix, False
    high = successor(prefix)  # exclusive
    if after is not None:
        if descending:
            if high is None or after < high:
                high = after
        elif after >= low:
            low, low_open = after, True
    if high is not None and low >= high:
        return None
    if not low_open and high == successor(prefix):
        return KeyRange(f"begins_with({expr.name(attribute)}, {expr.value(prefix)})" if prefix else None)
    if low == "" and high is None:
        return KeyRange(None)
    name = expr.name(attribute)
    if low == "":
        # DynamoDB refuses empty key values, and no stored key is empty: there is no lower bound.
        return KeyRange(f"{name} < {expr.value(high)}")
    if high is None:
        return KeyRange(f"{name} {'>' if low_open else '>='} {expr.value(low)}")
    skip = {high, low} if low_open else {high}
    return KeyRange(f"{name} BETWEEN {expr.value(low)} AND {expr.value(high)}", frozenset(skip))


def query_params(
    pk: str, attribute: str, prefix: str, after: str | None, descending: bool, *, partition: str = PK
) -> tuple[dict[str, Any], frozenset[str]] | None:
    """KeyConditionExpression, direction and placeholders of a Query of the items whose
    ``partition`` attribute is ``pk`` and whose sort attribute ``attribute`` starts with
    ``prefix`` and is past ``after``; and the bound values to skip in the answer. None when no
    item can match."""
    expr = Expr()
    found = key_range(expr, attribute, prefix, after, descending)
    if found is None:
        return None
    condition = f"{expr.name(partition)} = {expr.value(pk)}"
    if found.condition:
        condition += f" AND {found.condition}"
    params = {"KeyConditionExpression": condition, "ScanIndexForward": not descending, **expr.params()}
    return params, found.skip
