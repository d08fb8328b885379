"""The one place that creates onnxruntime sessions, so training and classify run the same way."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from kestrel.config import VisionSettings

#: Lambda and the dev machines have 2 cores; override with KESTREL_ORT_THREADS.
DEFAULT_THREADS = VisionSettings.ort_threads


_process_default: int | None = None  # set by the process that owns its share of the cores


def set_default_threads(threads: int) -> None:
    """Intra-op threads for this process's sessions: a gateway worker process gets its share of
    the cores (workers x threads ~ cores), so that parallel workers do not oversubscribe them."""
    global _process_default
    if threads < 1:
        raise ValueError(f"onnxruntime needs at least one thread, not {threads}")
    _process_default = threads


def _thread_count() -> int:
    return _process_default or VisionSettings.from_env().ort_threads


def create_session(model: Path | bytes, threads: int | None = None) -> ort.InferenceSession:
    """A CPU InferenceSession tuned for small machines.

    * all graph optimisations (Conv+Clip fusion, NCHWc layouts) — the biggest win on CPU;
    * ``threads`` intra-op threads (KESTREL_ORT_THREADS, else the process's share, else 2) and ONE inter-op thread:
      the graph is a chain, so parallel branches would only oversubscribe the cores;
    * no spinning: idle worker threads would burn the CPU the decoder and the API need.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or _thread_count()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about unused initialisers etc. are noise in logs
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
