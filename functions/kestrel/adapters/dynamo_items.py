"""Item store on one DynamoDB table: the production adapter.

Table layout: partition key ``pk`` (S), sort key ``sk`` (S) and a global secondary index
``by_list`` on (``lst`` (S), ``ord`` (S)), projection ALL: the lists. Reads by key are strongly
consistent (``ConsistentRead=True``); a global index cannot be, so ``query(index="ord")`` sees a
write once DynamoDB has propagated it (typically well under a second). The table has no local
index, so no item collection is capped at 10 GB (docs/architecture.md, "Partition design").

The write vocabulary of the port (Condition, Update) is translated into DynamoDB expressions
with the same meaning as :mod:`kestrel.adapters.item_rules` by the pure functions of
:mod:`kestrel.adapters.dynamo_expressions`; this module sends them and interprets the answers
(retries, cancellations, map shapes). The contract tests run the same suite against this
adapter (under moto) and the SQLite one.

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

import random
import time
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from botocore.exceptions import ClientError

from kestrel.adapters.aws_clients import aws_client
from kestrel.adapters.dynamo_expressions import (
    Changes,
    Expr,
    changes_of,
    condition_params,
    condition_parts,
    item_from_dynamo,
    item_to_dynamo,
    key_to_dynamo,
    map_shapes,
    query_params,
    update_allowed,
    update_params,
)
from kestrel.adapters.item_rules import item_key
from kestrel.ports.errors import Unavailable
from kestrel.ports.items import (
    LIST,
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

LIST_INDEX = "by_list"
MAX_TRANSACTION_ITEMS = 100  # TransactWriteItems' limit
_BATCH_GET_KEYS = 100  # BatchGetItem's limit
_ATTEMPTS = 8  # tries for a write that hits conflicts, throttling or a map changing shape

# Cancellation reasons of a transaction that say "try again", not "no". botocore does not retry
# a cancelled transaction, so the adapter does.
_RETRY_REASONS = frozenset(
    {"TransactionConflict", "ProvisionedThroughputExceeded", "ThrottlingError", "RequestLimitExceeded"}
)
# Single-request codes that say "try again" and botocore does not retry. Throttling codes are not
# here: the client's own retries (kestrel.adapters.aws_clients) back off on them, and retrying
# again around those would multiply the attempts (and the wait) for nothing.
_RETRY_CODES = frozenset({"TransactionConflictException"})


class StoreBusy(Unavailable):
    """DynamoDB kept refusing a request for a transient reason (conflicts, throttling)."""

    def __init__(self, reason: str) -> None:
        super().__init__("the database", reason, retry_after=1)


def _is_document_path_error(error: ClientError) -> bool:
    return "document path" in str(error.response.get("Error", {}).get("Message", ""))


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _backoff(attempt: int) -> None:
    """Full-jitter exponential back-off: 25 ms, 50 ms, ... capped at 1 s."""
    time.sleep(random.uniform(0, min(1.0, 0.025 * 2**attempt)))


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
        response = self._client.get_item(TableName=self.table_name, Key=key_to_dynamo(key), ConsistentRead=True)
        raw = response.get("Item")
        return item_from_dynamo(raw) if raw else None

    def batch_get(self, keys: Sequence[Key]) -> list[Item]:
        found: dict[Key, dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))  # BatchGetItem refuses duplicate keys
        for start in range(0, len(unique), _BATCH_GET_KEYS):
            pending = [key_to_dynamo(key) for key in unique[start : start + _BATCH_GET_KEYS]]
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
        return [item_from_dynamo(found[key]) for key in keys if key in found]

    def _query_request(
        self, pk: str, prefix: str, index: str, after: str | None, descending: bool
    ) -> tuple[dict[str, Any], frozenset[str]] | None:
        if index not in (SK, ORD):
            raise ValueError(f"unknown index {index!r}")
        planned = query_params(pk, index, prefix, after, descending, partition=PK if index == SK else LIST)
        if planned is None:
            return None
        params, skip = planned
        request: dict[str, Any] = {"TableName": self.table_name, **params}
        if index == ORD:
            request["IndexName"] = LIST_INDEX  # global: eventually consistent only
        else:
            request["ConsistentRead"] = True
        return request, skip

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
                yield item_from_dynamo(raw)
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
        expr = Expr()
        params = {
            "Item": item_to_dynamo(put.item),
            **condition_params(expr, condition_parts(expr, put.condition)),
        }
        params.update(expr.params())
        return params

    def _delete_params(self, delete: Delete) -> dict[str, Any]:
        expr = Expr()
        params = {
            "Key": key_to_dynamo(delete.key),
            **condition_params(expr, condition_parts(expr, delete.condition)),
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
        changes = {i: changes_of(w) for i, w in enumerate(writes) if isinstance(w, Update)}
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
                        shapes[i] = map_shapes(changes[i], self.get(keys[i]))
                elif _error_code(error) in _RETRY_CODES:
                    _backoff(attempt)
                else:
                    raise
        raise StoreBusy(f"transaction still refused after {_ATTEMPTS} attempts")

    @staticmethod
    def _optimistic_maps(changes: dict[int, Changes], shapes: dict[int, dict[str, bool]]) -> list[int]:
        return [i for i, change in changes.items() if change.map_names and i not in shapes]

    def _transact_item(
        self, index: int, write: Write, changes: dict[int, Changes], shapes: dict[int, dict[str, bool]]
    ) -> dict[str, Any]:
        if isinstance(write, Put):
            return {"Put": {"TableName": self.table_name, **self._put_params(write)}}
        if isinstance(write, Update):
            params = update_params(write, changes[index], shapes.get(index))
            return {"Update": {"TableName": self.table_name, **params}}
        return {"Delete": {"TableName": self.table_name, **self._delete_params(write)}}

    def _after_cancel(
        self,
        error: ClientError,
        writes: Sequence[Write],
        changes: dict[int, Changes],
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
            old = item_from_dynamo(raw) if raw else None
            if not update_allowed(write, old):
                raise ConditionFailed(index) from None
            shapes[index] = map_shapes(changes[index], old)  # only our shape guard failed
            replanned = True
        for index, code in enumerate(codes):
            if code == "ValidationError" and _is_path_reason(reasons[index]):
                if index in changes and changes[index].map_names and index not in shapes:
                    shapes[index] = map_shapes(changes[index], self.get(_write_key(writes[index])))
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
        changes = changes_of(update)
        shapes: dict[str, bool] | None = None
        for attempt in range(_ATTEMPTS):
            params = update_params(update, changes, shapes)
            try:
                response = self._client.update_item(TableName=self.table_name, ReturnValues="ALL_NEW", **params)
                return item_from_dynamo(response["Attributes"])
            except ClientError as error:
                code = _error_code(error)
                if code == "ConditionalCheckFailedException":
                    if shapes is None:
                        raise ConditionFailed(0) from None
                    raw = error.response.get("Item")
                    old = item_from_dynamo(raw) if raw else None
                    if not update_allowed(update, old):
                        raise ConditionFailed(0) from None
                    shapes = map_shapes(changes, old)  # only our shape guard failed
                elif shapes is None and changes.map_names and _is_document_path_error(error):
                    shapes = map_shapes(changes, self.get(update.key))
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
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in (PK, SK, LIST, ORD)],
        KeySchema=[{"AttributeName": PK, "KeyType": "HASH"}, {"AttributeName": SK, "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": LIST_INDEX,
                "KeySchema": [
                    {"AttributeName": LIST, "KeyType": "HASH"},
                    {"AttributeName": ORD, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
