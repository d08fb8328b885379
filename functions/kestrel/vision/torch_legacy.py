"""Read torch's legacy (non-zip) ``.pth`` files with numpy and pickle only — torch is never imported.

The legacy format is a run of pickles followed by raw storage bytes:

1. the magic number, 2. the protocol version (1001), 3. system info (endianness, type sizes),
4. the object itself (here a state dict), whose storages are *persistent ids*
   ``("storage", <StorageType>, key, location, numel, view_metadata)``,
5. the list of storage keys, in the order their bytes follow,
6. for each key: an 8-byte little-endian element count, then the elements.

Weights files are downloaded from package registries, so the unpickler is a whitelist: only the
few globals a state dict needs resolve, each to a harmless local stand-in; anything else
(``os.system``, ``builtins.eval``...) raises :class:`UnsafeCheckpointError`.
"""

from __future__ import annotations

import collections
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

#: torch's legacy storage classes and the numpy dtype of their elements (little-endian).
STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class CheckpointError(ValueError):
    """The file is not a legacy torch checkpoint this reader understands."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The pickle names a global outside the whitelist: refused, nothing was executed."""


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for ``torch.FloatStorage`` and friends: only its element dtype matters."""

    name: str
    dtype: np.dtype[Any]


@dataclass(frozen=True)
class _StorageRef:
    """A persistent id resolved to 'this many elements at this offset of that storage'."""

    key: str
    dtype: np.dtype[Any]
    root_numel: int  # elements in the whole stored storage
    offset: int  # in elements, non-zero only for legacy storage views
    numel: int


@dataclass(frozen=True)
class _PendingTensor:
    """A tensor whose storage bytes have not been read yet (they follow the pickles)."""

    storage: _StorageRef
    storage_offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: _StorageRef,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> _PendingTensor:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``; gradients and hooks are irrelevant here."""
    if not isinstance(storage, _StorageRef):
        raise CheckpointError("a tensor's storage is not a persistent storage reference")
    return _PendingTensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data: _PendingTensor, requires_grad: bool, backward_hooks: object) -> _PendingTensor:
    """Stand-in for ``torch._utils._rebuild_parameter``: a Parameter is just its tensor here."""
    return data


_ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _WhitelistUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name, STORAGE_DTYPES[name])
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"refusing to load global {module}.{name}: not part of a torch state dict"
            ) from None

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise CheckpointError(f"unexpected persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel, view = pid
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"persistent id names an unknown storage type {storage_type!r:.80}")
        if view is None:
            return _StorageRef(str(key), storage_type.dtype, int(numel), 0, int(numel))
        # Old torch saved storage views as (view_key, offset, view_size) into the root storage.
        _view_key, view_offset, view_size = view
        return _StorageRef(str(key), storage_type.dtype, int(numel), int(view_offset), int(view_size))


def _load_pickle(stream: IO[bytes]) -> Any:
    try:
        return _WhitelistUnpickler(stream).load()
    except UnsafeCheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as error:
        raise CheckpointError(f"damaged checkpoint pickle: {error}") from None


def _read_storages(stream: IO[bytes], keys: list[str], roots: dict[str, _StorageRef]) -> dict[str, np.ndarray]:
    storages: dict[str, np.ndarray] = {}
    for key in keys:
        header = stream.read(8)
        if len(header) != 8:
            raise CheckpointError(f"file ends before storage {key}")
        numel = int.from_bytes(header, "little", signed=True)
        root = roots.get(key)
        if root is None:
            raise CheckpointError(f"storage {key} is listed but no tensor uses it")
        # The pickle already said how big the storage is; a disagreeing count is a damaged file
        # (and must not make us allocate whatever the count says).
        if numel != root.root_numel:
            raise CheckpointError(f"storage {key} holds {numel} elements, the pickle said {root.root_numel}")
        dtype = root.dtype
        raw = stream.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize:
            raise CheckpointError(f"storage {key} is truncated")
        storages[key] = np.frombuffer(raw, dtype=dtype)
    return storages


def _materialise(pending: _PendingTensor, storages: dict[str, np.ndarray]) -> np.ndarray:
    ref = pending.storage
    flat = storages[ref.key][ref.offset : ref.offset + ref.numel]
    if len(pending.size) != len(pending.stride):
        raise CheckpointError("tensor size and stride have different ranks")
    if any(n == 0 for n in pending.size):
        return np.zeros(pending.size, dtype=flat.dtype.newbyteorder("="))
    # The last element the view touches must lie inside the storage.
    last = pending.storage_offset + sum((n - 1) * s for n, s in zip(pending.size, pending.stride, strict=True))
    if pending.storage_offset < 0 or min(pending.stride, default=0) < 0 or last >= flat.size:
        raise CheckpointError("tensor view reaches outside its storage")
    view = np.lib.stride_tricks.as_strided(
        flat[pending.storage_offset :],
        shape=pending.size,
        strides=tuple(s * flat.itemsize for s in pending.stride),
        writeable=False,
    )
    # Copy: a contiguous, native-endian array that owns its memory (and can be written to).
    return np.array(view, dtype=flat.dtype.newbyteorder("="), order="C")  # (ascontiguousarray makes 0-d 1-d)


def load_legacy_state_dict(source: Path | IO[bytes]) -> dict[str, np.ndarray]:
    """Read a legacy ``torch.save`` state dict as ``{name: array}``; storage views, offsets and
    strides are honoured, and every array is a contiguous copy."""
    if isinstance(source, Path):
        with source.open("rb") as file:
            return load_legacy_state_dict(file)
    stream = source
    if _load_pickle(stream) != MAGIC_NUMBER:
        raise CheckpointError("not a legacy torch checkpoint (bad magic number; zip checkpoints are not read)")
    if _load_pickle(stream) != PROTOCOL_VERSION:
        raise CheckpointError("unsupported legacy checkpoint protocol version")
    sys_info = _load_pickle(stream)
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", False)):
        raise CheckpointError("only little-endian checkpoints are supported")
    state = _load_pickle(stream)
    if not isinstance(state, dict):
        raise CheckpointError(f"the checkpoint holds a {type(state).__name__}, not a state dict")
    keys = _load_pickle(stream)
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise CheckpointError("the storage key list is malformed")

    pending: dict[str, _PendingTensor] = {}
    roots: dict[str, _StorageRef] = {}
    for name, value in state.items():
        if not isinstance(value, _PendingTensor):
            raise CheckpointError(f"state dict entry {name!r} is not a tensor")
        root = roots.setdefault(value.storage.key, value.storage)
        if (root.dtype, root.root_numel) != (value.storage.dtype, value.storage.root_numel):
            raise CheckpointError(f"storage {value.storage.key} is described in two different ways")
        pending[str(name)] = value

    storages = _read_storages(stream, keys, roots)
    missing = set(roots) - set(storages)
    if missing:
        raise CheckpointError(f"storages missing from the file: {sorted(missing)[:5]}")
    return {name: _materialise(tensor, storages) for name, tensor in pending.items()}
