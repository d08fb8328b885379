"""Item store on one DynamoDB table: the production adapter.

Table layout: partition key ``pk`` (S), sort key ``sk`` (S) and a local secondary index
``by_ord`` on ``ord`` (S, projection ALL). A *local* index keeps ``query(index="ord")`` strongly
consistent, like every other read here (``ConsistentRead=True`` throughout).

The write vocabulary of the port (Condition, Update) is translated into DynamoDB expressions
with the same meaning as :mod:`kestrel.adapters.item_rules`; the contract tests run the same
suite against this adapter (under moto) and the SQLite one.

Map attributes (``Update.map_set`` / ``map_remove``). DynamoDB cannot set ``m.k`` when ``m`` does
not exist, and ``SET m = if_not_exists(m, :empty), m.k = :v`` is refused (overlapping paths).
So an update is first sent *optimistically* with nested paths (``SET #m.#k = :v``), which is one
round trip when the map exists - entities that own maps should Put them as ``{}`` so this is the
common case. If DynamoDB answers that the document path is invalid, the adapter reads the item
and re-sends the update with the map's shape pinned by a guard: ``attribute_type(#m, M)`` with
nested paths, or ``NOT attribute_type(#m, M)`` with the whole map written as ``SET #m = :entries``.
A guard that fails (the shape changed in between) is told apart from the caller's own condition
by evaluating that condition on the old item DynamoDB returns (ReturnValuesOnConditionCheckFailure
= ALL_OLD); only a genuine failure raises ConditionFailed, a shape change is retried.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from kestrel.adapters.aws_clients import aws_client
from kestrel.adapters.item_rules import condition_holds, item_key
from kestrel.ports.errors import Unavailable
from kestrel.ports.items import (
    ORD,
    PK,
    SK,
    Condition,
    ConditionFailed,
    Delete,
    Item,
    Key,
    Put,
    Update,
    Write,
)

ORD_INDEX = "by_ord"
MAX_TRANSACTION_ITEMS = 100  # TransactWriteItems' limit
_BATCH_GET_KEYS = 100  # BatchGetItem's limit
_ATTEMPTS = 8  # tries for a write that hits conflicts, throttling or a map changing shape
_NOOP = "kestrel_noop"  # an attribute never stored: "REMOVE" of it makes an update that changes nothing

# Cancellation reasons of a transaction that say "try again", not "no". botocore does not retry
# a cancelled transaction, so the adapter does.
_RETRY_REASONS = frozenset(
    {"TransactionConflict", "ProvisionedThroughputExceeded", "ThrottlingError", "RequestLimitExceeded"}
)
# Single-request codes that say "try again" and botocore does not retry. Throttling codes are not
# here: the client's own retries (kestrel.adapters.aws_clients) back off on them, and retrying
# again around those would multiply the attempts (and the wait) for nothing.
_RETRY_CODES = frozenset({"TransactionConflictException"})

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


class StoreBusy(Unavailable):
    """DynamoDB kept refusing a request for a transient reason (conflicts, throttling)."""

    def __init__(self, reason: str) -> None:
        super().__init__("the database", reason, retry_after=1)


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


def _item_to_dynamo(item: Item) -> dict[str, Any]:
    # SQLite keeps ``ord: None`` as "not indexed"; DynamoDB refuses a NULL index key, so drop it.
    return {name: serialize(value) for name, value in item.items() if not (name == ORD and value is None)}


def _item_from_dynamo(raw: dict[str, Any]) -> Item:
    return {name: deserialize(value) for name, value in raw.items()}


def _key_to_dynamo(key: Key) -> dict[str, Any]:
    return {PK: {"S": key[0]}, SK: {"S": key[1]}}


# -- expressions ----------------------------------------------------------------------------


class _Expr:
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


def _condition_parts(expr: _Expr, condition: Condition | None, *, must_exist: bool = False) -> list[str]:
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


def _condition_params(expr: _Expr, parts: list[str]) -> dict[str, Any]:
    return {"ConditionExpression": " AND ".join(parts)} if parts else {}


@dataclass
class _Changes:
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


def _changes(update: Update) -> _Changes:
    touched = {*update.set, *update.remove, *update.increment, *update.map_set, *update.map_remove}
    if touched & {PK, SK}:
        raise ValueError("an Update cannot change the key attributes pk and sk")
    sets = dict(update.set)
    removes = list(dict.fromkeys(update.remove))
    for name in removes:
        sets.pop(name, None)  # set, then remove: the removal wins
    if ORD in sets and sets[ORD] is None:
        # ``ord: None`` means "not indexed" (see _item_to_dynamo): remove it instead.
        del sets[ORD]
        removes.append(ORD)
    changes = _Changes(sets=sets, removes=removes)
    for name, delta in update.increment.items():
        if name in sets:
            sets[name] = int(sets[name] or 0) + delta
        elif name in removes:
            removes.remove(name)
            sets[name] = delta
        else:
            changes.increments[name] = delta
    for name, entries in update.map_set.items():
        if name in changes.increments:
            raise ValueError(f"an Update cannot both increment and map_set {name!r}")
        if name in sets:
            if not isinstance(sets[name], dict):
                raise ValueError(f"an Update cannot map_set {name!r}, which it sets to a non-map")
            sets[name] = {**sets[name], **entries}
        elif name in removes:
            removes.remove(name)
            sets[name] = dict(entries)
        else:
            changes.map_sets[name] = dict(entries)
    for name, keys in update.map_remove.items():
        if name in changes.increments:
            raise ValueError(f"an Update cannot both increment and map_remove {name!r}")
        if name in sets:
            if isinstance(sets[name], dict):
                sets[name] = {k: v for k, v in sets[name].items() if k not in keys}
        elif name not in removes:  # removing keys of a removed map changes nothing
            changes.map_removes[name] = list(dict.fromkeys(keys))
            if name in changes.map_sets:
                kept = changes.map_sets[name]
                changes.map_sets[name] = {k: v for k, v in kept.items() if k not in keys}
    return changes


def _map_shapes(changes: _Changes, item: Item | None) -> dict[str, bool]:
    """For each map the update touches: is it a map on ``item`` right now?"""
    current = item or {}
    return {name: isinstance(current.get(name), dict) for name in changes.map_names}


def _update_allowed(update: Update, current: Item | None) -> bool:
    """Whether the caller's own requirements hold on ``current`` (item_rules' meaning)."""
    if current is None and not update.upsert:
        return False
    return condition_holds(current, update.condition)


def _update_params(update: Update, changes: _Changes, shapes: dict[str, bool] | None) -> dict[str, Any]:
    """Key, UpdateExpression, ConditionExpression and placeholders for one Update.

    ``shapes`` None: assume every touched map exists (no read, no guard). Otherwise pin each
    map's shape with a guard and write it accordingly (see the module docstring)."""
    expr = _Expr()
    assignments: list[str] = []
    removals: list[str] = []
    for name, value in changes.sets.items():
        assignments.append(f"{expr.name(name)} = {expr.value(value)}")
    for name in changes.removes:
        removals.append(expr.name(name))
    for name, delta in changes.increments.items():
        attribute = expr.name(name)
        assignments.append(f"{attribute} = if_not_exists({attribute}, {expr.value(0)}) + {expr.value(delta)}")
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
    if not assignments and not removals:
        # An update that changes nothing still checks its condition (and creates on upsert).
        removals.append(expr.name(_NOOP))
    clauses = []
    if assignments:
        clauses.append("SET " + ", ".join(assignments))
    if removals:
        clauses.append("REMOVE " + ", ".join(removals))
    parts = _condition_parts(expr, update.condition, must_exist=not update.upsert) + guards
    params: dict[str, Any] = {
        "Key": _key_to_dynamo(update.key),
        "UpdateExpression": " ".join(clauses),
        **_condition_params(expr, parts),
    }
    if shapes is not None:
        params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    params.update(expr.params())
    return params


def _is_document_path_error(error: ClientError) -> bool:
    return "document path" in str(error.response.get("Error", {}).get("Message", ""))


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _backoff(attempt: int) -> None:
    """Full-jitter exponential back-off: 25 ms, 50 ms, ... capped at 1 s."""
    time.sleep(random.uniform(0, min(1.0, 0.025 * 2**attempt)))


# -- key ranges -----------------------------------------------------------------------------


def _successor(prefix: str) -> str | None:
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
class _Range:
    condition: str | None  # the sort key part of the KeyConditionExpression
    skip: frozenset[str] = frozenset()  # bound values the condition lets through but must not be returned


def _key_range(expr: _Expr, attribute: str, prefix: str, after: str | None, descending: bool) -> _Range | None:
    """The exact key condition for "starts with ``prefix`` and is past ``after``"; None if empty.

    ``begins_with`` cannot be combined with another range in a KeyConditionExpression, and
    BETWEEN is inclusive at both ends, so a prefix becomes [prefix, successor) and an ``after``
    narrows one end; BETWEEN then admits the open ends, which ``skip`` drops again (at most the
    boundary values, so no page is wasted)."""
    low, low_open = prefix, False
    high = _successor(prefix)  # exclusive
    if after is not None:
        if descending:
            if high is None or after < high:
                high = after
        elif after >= low:
            low, low_open = after, True
    if high is not None and low >= high:
        return None
    if not low_open and high == _successor(prefix):
        return _Range(f"begins_with({expr.name(attribute)}, {expr.value(prefix)})" if prefix else None)
    if low == "" and high is None:
        return _Range(None)
    name = expr.name(attribute)
    if low == "":
        # DynamoDB refuses empty key values, and no stored key is empty: there is no lower bound.
        return _Range(f"{name} < {expr.value(high)}")
    if high is None:
        return _Range(f"{name} {'>' if low_open else '>='} {expr.value(low)}")
    skip = {high, low} if low_open else {high}
    return _Range(f"{name} BETWEEN {expr.value(low)} AND {expr.value(high)}", frozenset(skip))


# -- the store ------------------------------------------------------------------------------


class DynamoItemStore:
    """ItemStore on one DynamoDB table (see :func:`create_table` for its layout).

    ``page_size`` caps the items DynamoDB returns per Query page (None: its own 1 MB pages);
    tests use it to exercise internal paging with a few items."""

    def __init__(self, table_name: str, client: Any = None, *, page_size: int | None = None) -> None:
        self.table_name = table_name
        self._client = client or aws_client("dynamodb")
        self._page_size = page_size

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: Key) -> Item | None:
        response = self._client.get_item(TableName=self.table_name, Key=_key_to_dynamo(key), ConsistentRead=True)
        raw = response.get("Item")
        return _item_from_dynamo(raw) if raw else None

    def batch_get(self, keys: Sequence[Key]) -> list[Item]:
        found: dict[Key, dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))  # BatchGetItem refuses duplicate keys
        for start in range(0, len(unique), _BATCH_GET_KEYS):
            pending = [_key_to_dynamo(key) for key in unique[start : start + _BATCH_GET_KEYS]]
            attempt = 0
            while pending:
                response = self._client.batch_get_item(
                    RequestItems={self.table_name: {"Keys": pending, "ConsistentRead": True}}
                )
                for raw in response.get("Responses", {}).get(self.table_name, []):
                    found[(raw[PK]["S"], raw[SK]["S"])] = raw
                # Throttling or the 16 MB response cap leave keys unprocessed: ask again.
                pending = response.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
                if pending:
                    if attempt >= _ATTEMPTS:
                        raise StoreBusy(f"DynamoDB left {len(pending)} keys unprocessed")
                    _backoff(attempt)
                    attempt += 1
        # Deserialise per requested key, so a key asked twice gives two independent dicts.
        return [_item_from_dynamo(found[key]) for key in keys if key in found]

    def _query_request(
        self, pk: str, prefix: str, index: str, after: str | None, descending: bool
    ) -> tuple[dict[str, Any], frozenset[str]] | None:
        if index not in (SK, ORD):
            raise ValueError(f"unknown index {index!r}")
        expr = _Expr()
        key_range = _key_range(expr, index, prefix, after, descending)
        if key_range is None:
            return None
        condition = f"{expr.name(PK)} = {expr.value(pk)}"
        if key_range.condition:
            condition += f" AND {key_range.condition}"
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": condition,
            "ConsistentRead": True,
            "ScanIndexForward": not descending,
            **expr.params(),
        }
        if index == ORD:
            request["IndexName"] = ORD_INDEX
        return request, key_range.skip

    def query(
        self,
        pk: str,
        prefix: str = "",
        *,
        index: Literal["sk", "ord"] = "sk",
        after: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> Iterator[Item]:
        if limit is not None and limit <= 0:
            return
        planned = self._query_request(pk, prefix, index, after, descending)
        if planned is None:
            return
        request, skip = planned
        produced = 0
        while True:
            page_limit = self._page_size
            if limit is not None:
                # Read no more than needed; one extra covers a skipped boundary item.
                wanted = limit - produced + (1 if skip else 0)
                page_limit = wanted if page_limit is None else min(page_limit, wanted)
            if page_limit is not None:
                request["Limit"] = page_limit
            response = self._client.query(**request)
            for raw in response.get("Items", []):
                if skip and raw[index]["S"] in skip:
                    continue
                yield _item_from_dynamo(raw)
                produced += 1
                if limit is not None and produced >= limit:
                    return
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def count(self, pk: str, prefix: str = "", *, index: Literal["sk", "ord"] = "sk") -> int:
        planned = self._query_request(pk, prefix, index, None, False)
        if planned is None:
            return 0
        request, _ = planned  # without ``after`` nothing is skipped
        request["Select"] = "COUNT"
        if self._page_size is not None:
            request["Limit"] = self._page_size
        total = 0
        while True:
            response = self._client.query(**request)
            total += int(response.get("Count", 0))
            last = response.get("LastEvaluatedKey")
            if not last:
                return total
            request["ExclusiveStartKey"] = last

    # -- writes --------------------------------------------------------------------------

    def _put_params(self, put: Put) -> dict[str, Any]:
        expr = _Expr()
        params = {
            "Item": _item_to_dynamo(put.item),
            **_condition_params(expr, _condition_parts(expr, put.condition)),
        }
        params.update(expr.params())
        return params

    def _delete_params(self, delete: Delete) -> dict[str, Any]:
        expr = _Expr()
        params = {
            "Key": _key_to_dynamo(delete.key),
            **_condition_params(expr, _condition_parts(expr, delete.condition)),
        }
        params.update(expr.params())
        return params

    def transact(self, writes: Sequence[Write]) -> None:
        if not writes:
            return
        if len(writes) > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"a transaction holds at most {MAX_TRANSACTION_ITEMS} writes, got {len(writes)}")
        keys = [_write_key(write) for write in writes]
        if len(set(keys)) != len(keys):
            raise ValueError("a transaction may write each item only once (DynamoDB refuses more)")
        changes = {i: _changes(w) for i, w in enumerate(writes) if isinstance(w, Update)}
        shapes: dict[int, dict[str, bool]] = {}  # pinned map shapes, per write, once known
        for attempt in range(_ATTEMPTS):
            items = [self._transact_item(i, write, changes, shapes) for i, write in enumerate(writes)]
            try:
                self._client.transact_write_items(TransactItems=items)
                return
            except ClientError as error:
                if _error_code(error) == "TransactionCanceledException":
                    self._after_cancel(error, writes, changes, shapes, attempt)
                elif _is_document_path_error(error) and self._optimistic_maps(changes, shapes):
                    # moto answers a bad document path with a bare ValidationException that does
                    # not say which write it was: pin the shape of every optimistic one.
                    for i in self._optimistic_maps(changes, shapes):
                        shapes[i] = _map_shapes(changes[i], self.get(keys[i]))
                elif _error_code(error) in _RETRY_CODES:
                    _backoff(attempt)
                else:
                    raise
        raise StoreBusy(f"transaction still refused after {_ATTEMPTS} attempts")

    @staticmethod
    def _optimistic_maps(changes: dict[int, _Changes], shapes: dict[int, dict[str, bool]]) -> list[int]:
        return [i for i, change in changes.items() if change.map_names and i not in shapes]

    def _transact_item(
        self, index: int, write: Write, changes: dict[int, _Changes], shapes: dict[int, dict[str, bool]]
    ) -> dict[str, Any]:
        if isinstance(write, Put):
            return {"Put": {"TableName": self.table_name, **self._put_params(write)}}
        if isinstance(write, Update):
            params = _update_params(write, changes[index], shapes.get(index))
            return {"Update": {"TableName": self.table_name, **params}}
        return {"Delete": {"TableName": self.table_name, **self._delete_params(write)}}

    def _after_cancel(
        self,
        error: ClientError,
        writes: Sequence[Write],
        changes: dict[int, _Changes],
        shapes: dict[int, dict[str, bool]],
        attempt: int,
    ) -> None:
        """Decide what a cancelled transaction means: raise, or return to have it retried."""
        reasons = error.response.get("CancellationReasons") or []
        codes = [str(reason.get("Code") or "None") for reason in reasons]
        replanned = False
        for index, code in enumerate(codes):
            if code != "ConditionalCheckFailed":
                continue
            write = writes[index]
            if not isinstance(write, Update) or index not in shapes:
                raise ConditionFailed(index) from None
            raw = reasons[index].get("Item")
            old = _item_from_dynamo(raw) if raw else None
            if not _update_allowed(write, old):
                raise ConditionFailed(index) from None
            shapes[index] = _map_shapes(changes[index], old)  # only our shape guard failed
            replanned = True
        for index, code in enumerate(codes):
            if code == "ValidationError" and _is_path_reason(reasons[index]):
                if index in changes and changes[index].map_names and index not in shapes:
                    shapes[index] = _map_shapes(changes[index], self.get(_write_key(writes[index])))
                    replanned = True
                    continue
                raise error
        if replanned:
            return
        if any(code in _RETRY_REASONS for code in codes):
            _backoff(attempt)
            return
        raise error

    def put(self, item: Item, condition: Condition | None = None) -> None:
        try:
            self._client.put_item(TableName=self.table_name, **self._put_params(Put(item, condition)))
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                raise ConditionFailed(0) from None
            raise

    def delete(self, key: Key, condition: Condition | None = None) -> None:
        try:
            self._client.delete_item(TableName=self.table_name, **self._delete_params(Delete(key, condition)))
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                raise ConditionFailed(0) from None
            raise

    def update(self, update: Update) -> Item:
        changes = _changes(update)
        shapes: dict[str, bool] | None = None
        for attempt in range(_ATTEMPTS):
            params = _update_params(update, changes, shapes)
            try:
                response = self._client.update_item(TableName=self.table_name, ReturnValues="ALL_NEW", **params)
                return _item_from_dynamo(response["Attributes"])
            except ClientError as error:
                code = _error_code(error)
                if code == "ConditionalCheckFailedException":
                    if shapes is None:
                        raise ConditionFailed(0) from None
                    raw = error.response.get("Item")
                    old = _item_from_dynamo(raw) if raw else None
                    if not _update_allowed(update, old):
                        raise ConditionFailed(0) from None
                    shapes = _map_shapes(changes, old)  # only our shape guard failed
                elif shapes is None and changes.map_names and _is_document_path_error(error):
                    shapes = _map_shapes(changes, self.get(update.key))
                elif code in _RETRY_CODES:
                    _backoff(attempt)
                else:
                    raise
        raise StoreBusy(f"update of {update.key} still refused after {_ATTEMPTS} attempts")


def _write_key(write: Write) -> Key:
    return item_key(write.item) if isinstance(write, Put) else write.key


def _is_path_reason(reason: dict[str, Any]) -> bool:
    return "document path" in str(reason.get("Message", ""))


def create_table(client: Any, table_name: str) -> None:
    """Create the item table (on-demand billing) and wait until it is active."""
    client.create_table(
        TableName=table_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in (PK, SK, ORD)],
        KeySchema=[{"AttributeName": PK, "KeyType": "HASH"}, {"AttributeName": SK, "KeyType": "RANGE"}],
        LocalSecondaryIndexes=[
            {
                "IndexName": ORD_INDEX,
                "KeySchema": [
                    {"AttributeName": PK, "KeyType": "HASH"},
                    {"AttributeName": ORD, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
