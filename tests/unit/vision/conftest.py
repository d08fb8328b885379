"""Shared fixtures: the backbone is converted once per test run, into the run's temp folder."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest

from kestrel.vision.backbone import Backbone, ensure_backbone
from kestrel.vision.session import create_session


@pytest.fixture(scope="session")
def backbone_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def backbone(backbone_dir: Path) -> Backbone:
    return ensure_backbone(backbone_dir)


@pytest.fixture(scope="session")
def backbone_session(backbone: Backbone) -> ort.InferenceSession:
    return create_session(backbone.path)
