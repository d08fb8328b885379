"""Two costs of moto that grow with the test, not with what it checks; removed, outcomes unchanged.

A pytest plugin (``pytest_plugins`` in tests/conftest.py; ``-p no:tests.moto_speed`` leaves moto
as it comes). Profiled with py-spy on tests/flow and tests/api (docs/testing.md), these
were about a quarter of the suite's CPU time:

- **A DynamoDB transaction deep-copied the whole table, once per item it names** (moto 5.2's
  rollback snapshot for all-or-nothing). An upload is a transaction of a few items, so each upload
  cost a copy of every item the test had written so far: quadratic in the test's size. Here only
  the items the transaction names are copied, and put back if it is cancelled: the same outcome
  (``tests/unit/test_moto_speed.py`` checks it), at the cost of those items.
- **moto 5.2 serialises each response by trying every alias of every member name** on the result
  (a snake_case form, a shape-name form, ...), about 30 ms for a BatchGetItem of ten items: most
  of it for the nine absent members of each attribute value. For a result that is a plain dict,
  the names moto tries depend on the member alone, so they are worked out once per member (by
  moto's own code) and looked up in that order. Every other result is left to moto.
- **Every ``mock_aws`` block starts a new boto3 default session**, and each session reads
  botocore's service models (JSON files of up to several MB) from disk again. Here one process
  parses each file once; botocore already shares a loaded model between the clients of a session,
  so sharing it between sessions changes nothing it did not already rely on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import botocore.loaders
import moto.dynamodb.models as dynamodb_models
from moto.core.serialize import AttributePicker, AttributePickerContext
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

_moto_transact_write_items = DynamoDBBackend.transact_write_items


class _CopyExceptTables:
    """``copy`` as moto's DynamoDB backend sees it: a deep copy of a Table is the table itself
    (its only deep copy of a table is the transaction snapshot that ``_transact_write_items``
    replaces); every other copy is the real one."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


Snapshot = tuple[Table, Any, Any, Any]  # table, hash key, range key (or None), the item before (or None)


def _snapshot(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[Snapshot]:
    """A deep copy of each item the transaction names, as it is now (None: not there)."""
    saved = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            continue  # moto refuses the transaction itself
        if op_type == "Put":
            names = [table.hash_key_attr] + ([table.range_key_attr] if table.has_range_key else [])
            key = {name: op["Item"][name] for name in names if name in op["Item"]}
        else:
            key = op.get("Key", {})
        try:
            hash_key, range_key = backend.get_keys_value(table, key)
        except Exception:  # noqa: BLE001 (a malformed key: moto refuses it in the transaction)
            continue
        range_key = range_key if table.has_range_key else None
        saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    return saved


def _put_back(saved: list[Snapshot]) -> None:
    for table, hash_key, range_key, before in reversed(saved):
        if before is None:
            table.delete_item(hash_key, range_key)
        elif range_key is not None:
            table.items[hash_key][range_key] = before
        else:
            table.items[hash_key] = before


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    saved = _snapshot(self, transact_items)
    try:
        _moto_transact_write_items(self, transact_items)
    except Exception:
        _put_back(saved)
        raise


_moto_pick = AttributePicker.__call__


# For a plain dict, the names moto tries depend only on the member (its name, shape and parent
# shape) and the picker, never on the dict: worked out once per member, by moto itself.
_names_for_dicts: dict[tuple[Any, ...], tuple[Any, Any, tuple[str, ...]]] = {}


def _pick(self: AttributePicker, context: AttributePickerContext) -> Any:
    obj, shape = context.obj, context.shape
    if type(obj) is not dict or self.response_transformers:
        return _moto_pick(self, context)
    parent = getattr(shape, "parent", None)
    member = (type(self), id(self.alias_providers), id(shape), id(parent), context.key)
    known = _names_for_dicts.get(member)
    if known is None or known[0] is not shape or known[1] is not parent:
        known = (shape, parent, tuple(self.get_possible_keys(context)))
        _names_for_dicts[member] = known
    if any("." in name for name in known[2]):
        return _moto_pick(self, context)  # a dotted name is a path to walk: moto's case
    return next((obj[name] for name in known[2] if name in obj), None)


_botocore_load_file = botocore.loaders.JSONFileLoader.load_file
_parsed: dict[str, Any] = {}


def _load_file_once(self: botocore.loaders.JSONFileLoader, file_path: str) -> Any:
    # Each botocore Loader has its own JSONFileLoader: the files are shared by path, not by loader.
    if file_path not in _parsed:
        _parsed[file_path] = _botocore_load_file(self, file_path)
    return _parsed[file_path]


def pytest_configure(config: object) -> None:
    install()


def install(patch: Callable[[Any, str, Any], None] = setattr) -> None:
    """The three changes, for the rest of the process (or until ``patch``, e.g. a monkeypatch's
    ``setattr``, undoes them)."""
    patch(dynamodb_models, "copy", _CopyExceptTables())
    patch(DynamoDBBackend, "transact_write_items", _transact_write_items)
    patch(AttributePicker, "__call__", _pick)
    patch(botocore.loaders.JSONFileLoader, "load_file", _load_file_once)
