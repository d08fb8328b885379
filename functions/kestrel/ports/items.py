"""The item store port: a small, DynamoDB-shaped key-value store with transactions.

Every stored record is an *item*: a JSON-like dict addressed by a partition key ``pk`` and a
sort key ``sk``. Items may also belong to a *list*: an ``lst`` attribute names the list and
``ord`` orders the item in it (DynamoDB: a global secondary index on (lst, ord); SQLite: an
index). ``query(index="ord")`` walks one list; an item without ``lst`` is in none.

The vocabulary of writes (Put, Update, Delete, each with an optional Condition) is deliberately
small so that both adapters can implement it exactly, and every multi-item change goes through
``transact`` so that counters and membership maps never drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Item = dict[str, Any]
Key = tuple[str, str]

#: Attribute names the store itself uses; entities must not use them for anything else.
PK, SK, ORD, LIST = "pk", "sk", "ord", "lst"


@dataclass(frozen=True)
class Condition:
    """What must hold for a write to happen. All given parts must hold together."""

    exists: bool | None = None  # True: the item must exist; False: it must not
    equals: dict[str, Any] = field(default_factory=dict)  # attribute == value
    map_has: tuple[str, str] | None = None  # (map attribute, key) present
    map_lacks: tuple[str, str] | None = None  # (map attribute, key) absent


@dataclass(frozen=True)
class Put:
    item: Item
    condition: Condition | None = None


@dataclass(frozen=True)
class Update:
    """Changes parts of an existing item (it must exist unless ``upsert``)."""

    key: Key
    set: dict[str, Any] = field(default_factory=dict)
    remove: Sequence[str] = ()
    increment: dict[str, int] = field(default_factory=dict)  # numeric attributes, missing counts as 0
    map_set: dict[str, dict[str, Any]] = field(default_factory=dict)  # attribute -> {key: value}
    map_remove: dict[str, Sequence[str]] = field(default_factory=dict)  # attribute -> keys
    condition: Condition | None = None
    upsert: bool = False


@dataclass(frozen=True)
class Delete:
    key: Key
    condition: Condition | None = None


Write = Put | Update | Delete


class ConditionFailed(Exception):
    """A write's condition did not hold; nothing in its transaction was written."""

    def __init__(self, index: int, message: str = "condition failed") -> None:
        super().__init__(f"{message} (operation {index})")
        self.index = index


class ItemStore(Protocol):
    """Strongly consistent reads by key, atomic multi-item writes.

    Reads of a list (``index="ord"``) may lag the writes on DynamoDB (a global index is updated
    asynchronously, typically within a second): whatever must be exact is read by key."""

    def get(self, key: Key) -> Item | None: ...

    def batch_get(self, keys: Sequence[Key]) -> list[Item]:
        """The items that exist among ``keys``, in the order of ``keys``."""
        ...

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
        """Items of partition ``pk`` (``index="sk"``) or of list ``pk`` (``index="ord"``: the items
        whose ``lst`` is ``pk``) whose ``index`` attribute starts with ``prefix``, in order.

        ``after`` continues strictly past that ``index`` value (in the direction of travel)."""
        ...

    def count(self, pk: str, prefix: str = "", *, index: Literal["sk", "ord"] = "sk") -> int: ...

    def transact(self, writes: Sequence[Write]) -> None:
        """Apply all writes or none; raises ConditionFailed naming the first failing write."""
        ...

    def put(self, item: Item, condition: Condition | None = None) -> None: ...

    def update(self, update: Update) -> Item:
        """Apply one update and return the item as it is afterwards."""
        ...

    def delete(self, key: Key, condition: Condition | None = None) -> None: ...
