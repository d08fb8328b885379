"""Cold start: a new process until its first classify is answered.

Three figures, each the median of several fresh processes:
* floor: a bare Python process that imports onnxruntime, opens the backbone and runs one image
  (the least any process that classifies must do);
* ``import kestrel.handlers.classify`` alone (what a Lambda's init phase does before its first request);
* ``kestrel serve`` started → port open → first classify answered (model fetched, session built)."""

from __future__ import annotations

import base64
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from bench.common import ServerProcess, say

_FLOOR_SCRIPT = """
import numpy as np, onnxruntime as ort
from kestrel.vision.backbone import ensure_backbone
backbone = ensure_backbone()
session = ort.InferenceSession(str(backbone.path), providers=["CPUExecutionProvider"])
session.run(None, {backbone.input_name: np.zeros((1, 3, 224, 224), np.float32)})
"""


def _process_seconds(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def serve_to_first_classify(data_dir: Path, log: Path, token: str, task_id: str, image: bytes) -> dict[str, float]:
    """One cold start of ``kestrel serve``; the server is stopped afterwards."""
    body = {"task_id": task_id, "records": [{"_base64": base64.b64encode(image).decode()}]}
    started = time.perf_counter()
    with ServerProcess(data_dir, log) as server:
        server.wait_until_listening()
        listening = time.perf_counter()
        headers = {"Authorization": f"Token {token}"}
        first = requests.post(f"{server.url}recognition/v2/classify/", json=body, headers=headers, timeout=300)
        answered = time.perf_counter()
        assert first.status_code == 200, first.text
        second_began = time.perf_counter()
        again = requests.post(f"{server.url}recognition/v2/classify/", json=body, headers=headers, timeout=300)
        assert again.status_code == 200, again.text
        warm = time.perf_counter() - second_began
    return {
        "to_listening_s": listening - started,
        "first_classify_s": answered - listening,
        "total_s": answered - started,
        "warm_classify_s": warm,
    }


def cold_start(data_dir: Path, log: Path, token: str, task_id: str, image: bytes, runs: int) -> dict[str, Any]:
    floor = [_process_seconds(_FLOOR_SCRIPT) for _ in range(runs)]
    imports = [_process_seconds("import kestrel.handlers.classify") for _ in range(runs)]
    serves = [serve_to_first_classify(data_dir, log, token, task_id, image) for _ in range(runs)]
    result = {
        "runs": runs,
        "floor_s": statistics.median(floor),
        "import_handler_s": statistics.median(imports),
        **{name: statistics.median(run[name] for run in serves) for name in serves[0]},
    }
    say(
        f"cold start: floor {result['floor_s']:.2f} s, serve → first classify {result['total_s']:.2f} s "
        f"(listening {result['to_listening_s']:.2f} s + first classify {result['first_classify_s']:.2f} s)"
    )
    return result
