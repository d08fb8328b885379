"""The legacy .pth reader: every tensor of the real weights file, a synthetic file with views and
strides written by an independent writer below, and refusal of anything but a state dict."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from kestrel.vision.backbone import weights_path
from kestrel.vision.torch_legacy import (
    MAGIC_NUMBER,
    PROTOCOL_VERSION,
    CheckpointError,
    UnsafeCheckpointError,
    load_legacy_state_dict,
)

STORAGE_TYPES = {
    np.dtype("float32"): "FloatStorage",
    np.dtype("int64"): "LongStorage",
    np.dtype("float16"): "HalfStorage",
}


class Entry(NamedTuple):
    """One tensor as torch would pickle it: a strided window on a (possibly shared) storage."""

    storage_key: str
    storage_offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    view: tuple[str, int, int] | None = None  # legacy storage view: (view key, offset, size)


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _value(value: Any) -> bytes:
    # A protocol-2 pickle of a plain value without its PROTO header and STOP opcode.
    return pickle.dumps(value, protocol=2)[2:-1]


def write_legacy(entries: dict[str, Entry], storages: dict[str, np.ndarray]) -> bytes:
    """torch's _legacy_save layout, produced opcode by opcode (no torch needed)."""
    body = bytearray(b"\x80\x02" + _global("collections", "OrderedDict") + b")R(")
    for name, entry in entries.items():
        flat = storages[entry.storage_key]
        pid = (
            b"(" + _value("storage") + _global("torch", STORAGE_TYPES[flat.dtype]) + _value(entry.storage_key)
            + _value("cpu") + _value(flat.size) + _value(entry.view) + b"tQ"
        )  # fmt: skip
        hooks = _global("collections", "OrderedDict") + b")R"
        args = pid + _value(entry.storage_offset) + _value(entry.size) + _value(entry.stride) + b"\x89" + hooks
        body += _value(name) + _global("torch._utils", "_rebuild_tensor_v2") + b"(" + args + b"tR"
    body += b"u."
    out = io.BytesIO()
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, out, protocol=2)
    out.write(bytes(body))
    pickle.dump(list(storages), out, protocol=2)
    for flat in storages.values():
        out.write(flat.size.to_bytes(8, "little"))
        out.write(flat.astype(flat.dtype.newbyteorder("<")).tobytes())
    return out.getvalue()


@pytest.fixture(scope="module")
def real_state() -> dict[str, np.ndarray]:
    return load_legacy_state_dict(weights_path())


def test_real_weights_every_tensor_has_the_reference_shape_and_dtype(
    real_state: dict[str, np.ndarray],
) -> None:
    assert len(real_state) == 296
    for name, array in real_state.items():
        expected = np.int64 if name.endswith("num_batches_tracked") else np.float32
        assert array.dtype == expected, name
        assert array.flags["C_CONTIGUOUS"], name
        assert np.isfinite(array).all(), name
    assert real_state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert real_state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert real_state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert real_state["_fc.weight"].shape == (1000, 1280)
    statistics = ("num_batches_tracked", "running_mean", "running_var")
    parameters = sum(a.size for n, a in real_state.items() if not n.endswith(statistics))
    assert parameters == 4_652_008  # EfficientNet-Lite0's published 4.65M parameters
    assert real_state["_bn0.num_batches_tracked"].shape == ()
    assert (real_state["_bn0.running_var"] >= 0).all()  # some stem channels are dead: exactly 0


def test_real_weights_round_trip_through_an_independent_writer(real_state: dict[str, np.ndarray]) -> None:
    storages = {f"s{i}": a.reshape(-1) for i, a in enumerate(real_state.values())}
    entries = {
        name: Entry(f"s{i}", 0, a.shape, tuple(s // a.itemsize for s in a.strides))
        for i, (name, a) in enumerate(real_state.items())
    }
    again = load_legacy_state_dict(io.BytesIO(write_legacy(entries, storages)))
    assert list(again) == list(real_state)
    for name, array in real_state.items():
        assert again[name].shape == array.shape, name
        assert again[name].dtype == array.dtype, name
        np.testing.assert_array_equal(again[name], array)


def test_offsets_strides_shared_storages_and_views_are_honoured() -> None:
    base = np.arange(24, dtype=np.float32)
    longs = np.array([7, 8, 9], dtype=np.int64)
    halves = np.linspace(-1, 1, 6).astype(np.float16)
    entries = {
        "matrix": Entry("a", 0, (4, 6), (6, 1)),
        "transposed": Entry("a", 0, (6, 4), (1, 6)),  # same storage, column-major view
        "offset_slice": Entry("a", 5, (2, 3), (6, 2)),  # starts at element 5, every other column
        "scalar": Entry("b", 2, (), ()),
        "legacy_view": Entry("a", 1, (3,), (1,), view=("a.view", 10, 8)),  # elements 11, 12, 13
        "halves": Entry("c", 0, (2, 3), (3, 1)),
        "empty": Entry("a", 0, (0, 5), (5, 1)),
    }
    state = load_legacy_state_dict(io.BytesIO(write_legacy(entries, {"a": base, "b": longs, "c": halves})))
    grid = base.reshape(4, 6)
    np.testing.assert_array_equal(state["matrix"], grid)
    np.testing.assert_array_equal(state["transposed"], grid.T)
    np.testing.assert_array_equal(state["offset_slice"], [[5, 7, 9], [11, 13, 15]])
    assert state["scalar"].shape == ()
    assert state["scalar"].dtype == np.int64
    assert int(state["scalar"]) == 9
    np.testing.assert_array_equal(state["legacy_view"], [11, 12, 13])
    np.testing.assert_array_equal(state["halves"], halves.reshape(2, 3))
    assert state["halves"].dtype == np.float16
    assert state["empty"].shape == (0, 5)
    state["matrix"][0, 0] = 100  # copies, not read-only views of one buffer
    assert state["transposed"][0, 0] == 0


def test_a_view_reaching_outside_its_storage_is_refused() -> None:
    entries = {"w": Entry("a", 20, (2, 3), (3, 1))}
    with pytest.raises(CheckpointError, match="outside"):
        load_legacy_state_dict(io.BytesIO(write_legacy(entries, {"a": np.zeros(24, np.float32)})))


def test_a_truncated_file_is_refused() -> None:
    data = write_legacy({"w": Entry("a", 0, (4,), (1,))}, {"a": np.ones(4, np.float32)})
    with pytest.raises(CheckpointError, match="truncated"):
        load_legacy_state_dict(io.BytesIO(data[:-3]))


class _RemovesAFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.remove, (str(self.path),))


def test_a_pickle_naming_a_disallowed_global_is_refused_without_running_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("still here")
    out = io.BytesIO()
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}):
        pickle.dump(header, out, protocol=2)
    pickle.dump({"_conv_stem.weight": _RemovesAFile(victim)}, out, protocol=2)
    out.seek(0)
    with pytest.raises(UnsafeCheckpointError, match=r"posix\.remove|os\.remove"):
        load_legacy_state_dict(out)
    assert victim.read_text() == "still here"


@pytest.mark.parametrize("global_name", [("builtins", "eval"), ("torch", "load"), ("torch._utils", "_rebuild_qtensor")])
def test_only_whitelisted_globals_resolve(global_name: tuple[str, str]) -> None:
    out = io.BytesIO()
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}):
        pickle.dump(header, out, protocol=2)
    out.write(b"\x80\x02" + _global(*global_name) + b".")
    out.seek(0)
    with pytest.raises(UnsafeCheckpointError):
        load_legacy_state_dict(out)


def test_a_zip_checkpoint_or_other_file_is_not_mistaken_for_a_legacy_one() -> None:
    with pytest.raises(CheckpointError, match="magic"):
        load_legacy_state_dict(io.BytesIO(pickle.dumps(12345, protocol=2)))
    with pytest.raises(CheckpointError):
        load_legacy_state_dict(io.BytesIO(b"PK\x03\x04 not a pickle"))
