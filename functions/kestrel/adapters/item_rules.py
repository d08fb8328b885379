"""How conditions and updates act on an item held in memory.

The SQLite adapter applies writes with these functions inside one SQL transaction; the
DynamoDB adapter translates the same vocabulary into expressions. The contract tests prove
that both behave alike."""

from __future__ import annotations

import copy
from typing import Any

from kestrel.ports.items import PK, SK, Condition, Item, Key, Update


def item_key(item: Item) -> Key:
    return (str(item[PK]), str(item[SK]))


def condition_holds(current: Item | None, condition: Condition | None) -> bool:
    if condition is None:
        return True
    if condition.exists is True and current is None:
        return False
    if condition.exists is False and current is not None:
        return False
    if condition.equals:
        if current is None:
            return False
        for name, value in condition.equals.items():
            if current.get(name) != value:
                return False
    if condition.map_has is not None:
        name, key = condition.map_has
        if current is None or key not in (current.get(name) or {}):
            return False
    if condition.map_lacks is not None:
        name, key = condition.map_lacks
        if current is not None and key in (current.get(name) or {}):
            return False
    return True


def apply_update(current: Item | None, update: Update) -> Item:
    """The item after ``update``; ``current`` is None only for an upsert of a new item."""
    item: dict[str, Any] = copy.deepcopy(current) if current is not None else {}
    item[PK], item[SK] = update.key
    item.update(copy.deepcopy(update.set))
    for name in update.remove:
        item.pop(name, None)
    for name, delta in update.increment.items():
        item[name] = int(item.get(name) or 0) + delta
    for name, entries in update.map_set.items():
        target = item.setdefault(name, {})
        target.update(copy.deepcopy(entries))
    for name, keys in update.map_remove.items():
        target = item.get(name)
        if isinstance(target, dict):
            for key in keys:
                target.pop(key, None)
    return item
