"""Backbone cache: converted once, atomically, with an id that depends only on the bytes."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from kestrel.vision import backbone as backbone_module
from kestrel.vision.backbone import Backbone, backbone_id_for, build_backbone_main, ensure_backbone
from kestrel.vision.session import create_session


def test_id_is_stable_across_two_builds(backbone: Backbone, tmp_path: Path) -> None:
    again = ensure_backbone(tmp_path / "second")
    assert again.path != backbone.path
    assert again.path.read_bytes() == backbone.path.read_bytes()
    assert again.backbone_id == backbone.backbone_id
    assert backbone.backbone_id.startswith("efficientnet-lite0-")
    assert len(backbone.backbone_id) == len("efficientnet-lite0-") + 16
    assert backbone.backbone_id == backbone_id_for(backbone.path.read_bytes())


def test_describes_how_to_feed_it(backbone: Backbone) -> None:
    assert (backbone.input_size, backbone.resize, backbone.policy) == (224, 256, "squash")
    assert (backbone.mean, backbone.std) == (127.0, 128.0)
    assert backbone.features_dim == 1280


def test_a_later_call_only_reads(backbone: Backbone, monkeypatch: pytest.MonkeyPatch) -> None:
    before = backbone.path.stat().st_mtime_ns

    def no_conversion(progress: bool = False) -> bytes:
        raise AssertionError("converted again although the file is cached")

    monkeypatch.setattr(backbone_module, "convert", no_conversion)
    assert ensure_backbone(backbone.path.parent) == backbone
    assert backbone.path.stat().st_mtime_ns == before


def test_cache_dir_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch, backbone: Backbone) -> None:
    monkeypatch.setenv("KESTREL_MODEL_DIR", str(backbone.path.parent))
    assert ensure_backbone() == backbone
    monkeypatch.delenv("KESTREL_MODEL_DIR")
    monkeypatch.setenv("HOME", "/nonexistent-home")
    assert backbone_module.default_cache_dir() == Path("/nonexistent-home/.cache/kestrel/models")


def test_concurrent_first_calls_leave_one_whole_file_and_no_temp_files(tmp_path: Path, backbone: Backbone) -> None:
    # Separate processes, as when several workers start at once (spawned: no forked ORT threads).
    with ProcessPoolExecutor(max_workers=3, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(ensure_backbone, [tmp_path] * 3))
    assert {r.backbone_id for r in results} == {backbone.backbone_id}
    assert [p.name for p in tmp_path.iterdir()] == [backbone.path.name]
    assert oct(os.stat(results[0].path).st_mode & 0o777) == "0o644"


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(backbone_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        ensure_backbone(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_cached_file_runs(backbone_session: ort.InferenceSession) -> None:
    out = backbone_session.run(None, {"image": np.zeros((2, 3, 224, 224), np.float32)})
    assert [o.shape for o in out] == [(2, 1000), (2, 1280)]


def test_session_threads_follow_the_environment(backbone: Backbone, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KESTREL_ORT_THREADS", "1")
    session = create_session(backbone.path)
    assert session.get_session_options().intra_op_num_threads == 1
    assert create_session(backbone.path, threads=2).get_session_options().intra_op_num_threads == 2


def test_cli_prints_progress_path_and_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], backbone: Backbone
) -> None:
    assert build_backbone_main(["--cache-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert f"backbone_id: {backbone.backbone_id}" in out
    assert f"path: {tmp_path.resolve() / backbone.path.name}" in out
    assert "[1/3]" in err
    assert build_backbone_main(["--cache-dir", str(tmp_path)]) == 0
    assert "already converted" in capsys.readouterr().err


def test_runs_as_a_module(tmp_path: Path, backbone: Backbone) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kestrel.vision.backbone", "--cache-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert backbone.backbone_id in result.stdout
