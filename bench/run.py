"""`make bench`: Kestrel's performance record, written to docs/benchmarks.md.

In one run, on one fresh data folder:
* accuracy and training on the development data set, when ../shared/datasets/scenes is present
  (bench/scenes.py);
* quality: tasks of 20, 50 and all images a label trained through the API, on scenes/val beside
  scikit-learn's LogisticRegression on the same features (bench/quality.py; skipped without scenes);
* classify latency, batch 1 and 10: floor, handler in process, HTTP (latency.py);
* training time and peak memory for 100, 500 and 2,000 images, empty cache and +10 % (training_scale.py);
* listing time as a label grows to 10,000 images (listing.py);
* cold start, new process → first classify (coldstart.py);
* peak memory of an upload and a 10-record classify of the worst accepted images (memory.py);
* classify throughput and API create/list latency under 1-16 concurrent clients (load.py);
* the gateway's worker pool: throughput for several workers x onnxruntime threads, and another
  owner's latency while a slow classify runs (pool.py; alone: ``--only pool``);
* one backbone, many heads: classify latency for a task whose head is cached or not and memory
  per cached head with 1,000 tasks, beside one ONNX session per task (heads.py; alone: ``--only heads``);
* the tuning study: onnxruntime options, JPEG draft decoding, batching, int8 (tuning.py);
* similarity search: exact search latency and memory at 10k/100k/1M descriptors, and precision@5
  on scenes val/ through POST task/{id}/similar/ (similar.py; alone: ``--only similar``).

Run: `make bench` (or `.venv/bin/python -m bench.run [--quick]`; --quick is a small version
of every part, to check the benchmark itself runs; `--only pool`, `--only heads` or `--only similar`
measures that part alone and merges it into the last record)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.coldstart import cold_start
from bench.common import ServerProcess, machine, say
from bench.heads import heads_study
from bench.latency import latency
from bench.listing import listing_growth
from bench.load import classify_load, crud_floor, crud_load
from bench.memory import peak_memory
from bench.pool import pool_study
from bench.quality import quality
from bench.report import REPORT, RESULTS, write_report
from bench.scenes import SCENES, train_scenes
from bench.similar import similar_bench
from bench.training_scale import training_scale
from bench.tuning import measure_tuning, tuning_report
from kestrel.config import Limits, Settings
from kestrel.local.worker import LocalWorker
from kestrel.ports import Ports
from kestrel.store.accounts import create_token, ensure_owner
from tests.api.http import Api
from tests.conftest import build_ports, running_server
from tests.photos import photo


def small_task(api: Api, worker: LocalWorker) -> str:
    """A trained two-label task of sample photos, when the development data set is absent."""
    from tests.flow.conftest import make_trainable_task

    trainable = make_trainable_task(api)
    api.post(f"task/{trainable.task['id']}/train/", status=201)
    worker.run_until_idle()
    return str(trainable.task["id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small version of every part")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite docs/benchmarks.md from docs/benchmarks.json only"
    )
    parser.add_argument("--only", choices=sorted(PARTS), help="measure this part alone, merged into the last record")
    args = parser.parse_args(argv)
    if args.only:
        return only_part(args.only, args.quick)
    if args.report_only:
        results = json.loads(RESULTS.read_text())
        write_report(results, results.get("command", "make bench"), SCENES, tuning_report(results["tuning"]))
        say(f"rewrote {REPORT} from {RESULTS}")
        return 0
    quick = args.quick
    repeats = 5 if quick else args.repeats
    scenes = SCENES if SCENES.is_dir() else None
    results: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}
    images = [photo(name, 480) for name in ("chelsea", "coffee", "rocket", "astronaut", "motorcycle")] * 2
    with tempfile.TemporaryDirectory(prefix="kestrel-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        settings = Settings(runtime="local", data_dir=data_dir, table="", bucket="", limits=Limits())
        ports = build_ports(settings)
        with running_server(ports, "local") as server:
            api = Api(server.url, server.token)
            worker = LocalWorker(ports, poll_seconds=0.1)
            if scenes is not None:
                results["scenes"] = train_scenes(api, worker, quick)
                task_id = results["scenes"]["task"]
            else:
                say(f"scenes: {SCENES} not found; measuring on a small task of sample photos")
                task_id = small_task(api, worker)
            results["quality"] = quality(server, worker, quick)
            # precision@5 on the task trained on scenes above (the production version).
            results["similar"] = similar_bench(api, worker, task_id if scenes is not None else None, quick)
            results["latency"] = latency(server, api, task_id, images, repeats)
            sizes = (40, 60) if quick else (100, 500, 2000)
            results["training_scale"] = training_scale(api, worker, sizes, scenes)
            listing_sizes = (100, 300) if quick else (100, 1000, 10000)
            results["listing"] = listing_growth(api, ports, server.token, listing_sizes, repeats)
            token = server.token
        # The in-process server is stopped: from here on Kestrel runs in its own processes.
        results["memory"] = peak_memory(data_dir, token, task_id)
        # The figures before issue 14's bounds were measured once, on the old code; they are kept.
        if RESULTS.exists() and (before := json.loads(RESULTS.read_text()).get("memory", {}).get("before")):
            results["memory"]["before"] = before
        log = Path(tmp) / "server.log"
        results["cold_start"] = cold_start(data_dir, log, token, task_id, images[0], runs=2 if quick else 5)
        seconds = 2.0 if quick else 8.0
        results["load_seconds"] = seconds
        floor_ms = results["latency"]["batch 1"]["backbone (onnxruntime, preprocessed input)"]["median_ms"]
        levels = (1, 4) if quick else (1, 2, 4, 8, 16)
        with ServerProcess(data_dir, log) as served:
            served.wait_until_listening()
            results["classify_load"] = classify_load(served.url, token, task_id, images[0], levels, seconds, floor_ms)
            crud_levels = (1, 4) if quick else (1, 4, 16)
            load = crud_load(served.url, token, crud_levels, seconds)
        other_token, _ = create_token(ports.items, ensure_owner(ports.items, "bench-other@example.com"), "bench")
        results["pool"] = pool_study(data_dir, log, (token, other_token), task_id, images[0], levels, seconds, floor_ms)
        # The floor after the load, for the same owner with as many labels as the load left.
        results["crud_load"] = {"load": load, "floor": crud_floor(build_ports(settings), token, repeats * 5)}
        results["heads"] = heads_study(Path(tmp) / "heads", quick)
        results["heads"]["command"] = "make bench" + (" (--quick)" if quick else "")
    results["tuning"] = measure_tuning(images, repeats, scenes if not quick else None)
    results["command"] = "make bench" + (" (--quick)" if quick else "")
    write_report(results, results["command"], SCENES, tuning_report(results["tuning"]))
    say(f"wrote {REPORT}")
    return 0


def only_part(name: str, quick: bool) -> int:
    """One study alone (``--only NAME``), in a data folder of its own, merged into the last record
    (docs/benchmarks.json) and the report."""
    results = json.loads(RESULTS.read_text())
    kept = results.get(name, {}).get("conclusion")  # written by hand after a run; a new run keeps it
    with tempfile.TemporaryDirectory(prefix="kestrel-bench-") as tmp:
        results[name] = PARTS[name](results, Path(tmp), quick)
    if kept:
        results[name]["conclusion"] = kept
    results[name]["command"] = f"python -m bench.run --only {name}" + (" --quick" if quick else "")
    results[name]["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_report(results, results.get("command", "make bench"), SCENES, tuning_report(results["tuning"]))
    say(f"wrote the {name} figures into {REPORT}")
    return 0


def _pool_part(results: dict[str, Any], tmp: Path, quick: bool) -> dict[str, Any]:
    """The pool study on a small task."""
    floor_ms = results["latency"]["batch 1"]["backbone (onnxruntime, preprocessed input)"]["median_ms"]
    image = photo("chelsea", 480)
    data_dir = tmp / "data"
    ports = _local_ports(data_dir)
    with running_server(ports, "local") as server:
        task_id = small_task(Api(server.url, server.token), LocalWorker(ports, poll_seconds=0.1))
        token = server.token
    other_token, _ = create_token(ports.items, ensure_owner(ports.items, "bench-other@example.com"), "bench")
    levels = (1, 4) if quick else (1, 2, 4, 8, 16)
    seconds = 2.0 if quick else 8.0
    return pool_study(data_dir, tmp / "server.log", (token, other_token), task_id, image, levels, seconds, floor_ms)


def _similar_part(results: dict[str, Any], tmp: Path, quick: bool) -> dict[str, Any]:
    """The similarity search (a scenes task trained here)."""
    ports = _local_ports(tmp / "data")
    with running_server(ports, "local") as server:
        return similar_bench(Api(server.url, server.token), LocalWorker(ports, poll_seconds=0.1), None, quick)


def _heads_part(results: dict[str, Any], tmp: Path, quick: bool) -> dict[str, Any]:
    return heads_study(tmp / "heads", quick)


def _local_ports(data_dir: Path) -> Ports:
    return build_ports(Settings(runtime="local", data_dir=data_dir, table="", bucket="", limits=Limits()))


PARTS: dict[str, Callable[[dict[str, Any], Path, bool], dict[str, Any]]] = {
    "pool": _pool_part,
    "similar": _similar_part,
    "heads": _heads_part,
}


if __name__ == "__main__":
    sys.exit(main())
