"""Optional: Kestrel's ONNX backbone against the reference PyTorch implementation.

Kestrel never installs torch; this runs only where torch and efficientnet-lite-pytorch are
installed (a separate virtualenv, see docs/backbone.md) and is skipped everywhere else.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip(
    "torch", reason="optional comparison with PyTorch: torch is not installed (never in Kestrel's venv)"
)
pytest.importorskip(
    "efficientnet_lite_pytorch",
    reason="optional comparison: the reference efficientnet-lite-pytorch is not installed",
)

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "compare_backbone_with_torch.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_backbone_with_torch", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_onnx_backbone_matches_the_pytorch_reference(tmp_path: Path) -> None:
    compare = load_script()
    result = compare.compare(tmp_path)
    assert result["max_abs_diff_logits"] < compare.TOLERANCE, result
    assert result["max_abs_diff_features"] < compare.TOLERANCE, result
    assert result["top1_agreement"] == 1.0, result
