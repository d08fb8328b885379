"""The quality section of `make bench`: how good a model trained through Kestrel's API is, beside
the reference (the same frozen features + scikit-learn's LogisticRegression, fitted on the same
images), on ../shared/datasets/scenes.

For 20, 50 and all 100 training images a label (20 and 50: 3 resplits, i.e. 3 different
subsets; "all" has one, since the same photos always make the same model), each run is a new
owner that uploads the subset, trains through the API (local worker, real job) and classifies
val/ over HTTP. The reference is fitted on the plain-view features of the same subset. The
model's own test accuracy, its interval and its cross-validated accuracy are kept, to check that
the interval it reports holds the accuracy measured on unseen photos."""

from __future__ import annotations

import hashlib
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import say
from bench.photo_features import PhotoSet, load_split
from bench.scenes import SCENES, evaluate_scenes, scenes_files
from bench.training_scale import train_once
from kestrel.local.worker import LocalWorker
from tests.api.http import Api
from tests.conftest import RunningServer

SIZES: tuple[int | None, ...] = (20, 50, None)
RESPLITS = 3


def chosen_files(per_label: int | None, resplit: int) -> dict[str, list[Path]]:
    """The subset of train/ a run uses: ``per_label`` photos a label by a seeded permutation."""
    rng = np.random.default_rng(1000 + resplit)
    files = scenes_files("train")
    if per_label is None:
        return files
    return {name: [paths[i] for i in sorted(rng.permutation(len(paths))[:per_label])] for name, paths in files.items()}


def train_through_api(
    server: RunningServer, worker: LocalWorker, files: dict[str, list[Path]], run: str
) -> dict[str, Any]:
    api = Api(server.url, server.new_token(f"quality-{run}@example.com"))
    task = api.create_task(f"Scenes {run}")
    for name, paths in files.items():
        label = api.create_label(name)
        api.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
        for path in paths:
            api.upload(path.read_bytes(), labels=[label["id"]])
    figures = train_once(api, worker, task["id"])
    model = api.get(f"model/?task={task['id']}")["results"][0]
    val = evaluate_scenes(api, task["id"], quick=False)
    return {
        "val_accuracy": val["accuracy"],
        "test_accuracy": model["accuracy"],
        "accuracy_interval": model["accuracy_interval"],
        "cross_validated_accuracy": model["cross_validated_accuracy"],
        "cross_validated_accuracy_interval": model["cross_validated_accuracy_interval"],
        "evaluation_method": model["evaluation_method"],
        "job_seconds": figures["job_seconds"],
        "phase_seconds": figures["phase_seconds"],
    }


def reference_accuracy(train: PhotoSet, val: PhotoSet, files: dict[str, list[Path]]) -> float:
    """scikit-learn's LogisticRegression (defaults, C=1, no standardisation) on the plain-view
    features of the same photos."""
    from sklearn.linear_model import LogisticRegression  # a dev dependency: the benchmark's only

    hashes = {hashlib.sha256(path.read_bytes()).hexdigest() for paths in files.values() for path in paths}
    rows = [n for n, sha in enumerate(train.hashes) if sha in hashes]
    model = LogisticRegression(max_iter=5000)
    model.fit(np.stack([train.views[n][0] for n in rows]), train.targets[rows])
    plain = np.stack([v[0] for v in val.views])
    return float((model.predict(plain) == val.targets).mean())


def quality(
    server: RunningServer, worker: LocalWorker, quick: bool, only: tuple[int | None, ...] | None = None
) -> dict[str, Any] | None:
    if not SCENES.is_dir():
        say(f"quality: {SCENES} not found; skipping the quality section")
        return None
    say("quality: features for the reference (cached under build/)")
    train, val = load_split(SCENES, "train"), load_split(SCENES, "val", augmented=False)
    sizes: tuple[int | None, ...] = only or ((20,) if quick else SIZES)
    resplits = 1 if quick else RESPLITS
    results: dict[str, Any] = {"sizes": {}}
    for size in sizes:
        key = "all" if size is None else str(size)
        runs = []
        for resplit in range(resplits if size is not None else 1):
            files = chosen_files(size, resplit)
            say(f"quality: {key} a label, resplit {resplit + 1}: training through the API")
            run = train_through_api(server, worker, files, f"{key}-{resplit}")
            run["reference_val_accuracy"] = reference_accuracy(train, val, files)
            low, high = run["accuracy_interval"]
            run["interval_holds_val"] = low <= run["val_accuracy"] <= high
            say(
                f"quality: {key} a label: Kestrel {100 * run['val_accuracy']:.1f} % on val, "
                f"reference {100 * run['reference_val_accuracy']:.1f} %"
            )
            runs.append(run)
        results["sizes"][key] = {"runs": runs, **_spread(runs)}
    return results


def _spread(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def stats(field: str) -> dict[str, float]:
        values = [100 * run[field] for run in runs]
        return {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}

    return {"kestrel": stats("val_accuracy"), "reference": stats("reference_val_accuracy")}


def quality_section(results: dict[str, Any]) -> list[str]:
    lines = ["## Quality: Kestrel against the reference (scenes)", ""]
    if "quality" not in results:
        return [*lines, "Not in this record (measured before the section existed): run `make bench`.", ""]
    quality_results = results["quality"]
    if quality_results is None:
        return [*lines, f"Skipped: {SCENES} is not present on this machine.", ""]
    rows = []
    for key, size in quality_results["sizes"].items():
        kestrel, reference = size["kestrel"], size["reference"]
        runs = size["runs"]
        cv = [run["cross_validated_accuracy"] for run in runs if run["cross_validated_accuracy"] is not None]
        rows.append(
            [
                f"{key} / label",
                str(len(runs)),
                f"{kestrel['mean']:.1f} ± {kestrel['sd']:.1f}",
                f"{reference['mean']:.1f} ± {reference['sd']:.1f}",
                f"{kestrel['mean'] - reference['mean']:+.1f}",
                " / ".join(f"{100 * run['test_accuracy']:.0f}" for run in runs),
                " / ".join(f"{100 * a:.0f}-{100 * b:.0f}" for run in runs for a, b in [run["accuracy_interval"]]),
                " / ".join(f"{100 * value:.0f}" for value in cv) or "-",
                f"{sum(run['interval_holds_val'] for run in runs)} of {len(runs)}",
            ]
        )
    header = [
        "training images",
        "runs",
        "Kestrel on val/ %",
        "reference on val/ %",
        "points",
        "its test accuracy %",
        "its 95 % interval",
        "its CV accuracy %",
        "interval holds val",
    ]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table += ["| " + " | ".join(row) + " |" for row in rows]
    return [
        *lines,
        "Each run: a new owner uploads the subset, trains through the API, classifies `val/` (300 photos)",
        "over HTTP. Reference: scikit-learn `LogisticRegression()` (C=1, no standardisation) on the same",
        "photos' frozen features. Mean ± sd over the resplits (different subsets); 'all' is one run, since",
        "the same photos always give the same model. What was tried to get here: docs/quality.md.",
        *(
            [f"Measured with `{quality_results['command']}` (this section alone)."]
            if "command" in quality_results
            else []
        ),
        "",
        *table,
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    """The quality section alone: ``.venv/bin/python -m bench.quality [--quick]`` prints its table
    and writes the figures to build/quality.json (``make bench`` runs it with everything else)."""
    import argparse
    import json
    import tempfile

    from tests.conftest import build_ports, local_settings, running_server

    parser = argparse.ArgumentParser(description="Kestrel's quality benchmark against the reference")
    parser.add_argument("--quick", action="store_true", help="20 images a label, one run")
    parser.add_argument("--sizes", nargs="*", default=None, help="images a label: 20, 50, all")
    args = parser.parse_args(argv)
    only = tuple(None if size == "all" else int(size) for size in args.sizes) if args.sizes else None
    with tempfile.TemporaryDirectory(prefix="kestrel-quality-") as tmp:
        ports = build_ports(local_settings(Path(tmp) / "data"))
        with running_server(ports, "local") as server:
            results = quality(server, LocalWorker(ports, poll_seconds=0.1), args.quick, only)
    if results is not None:
        results["command"] = " ".join(
            [".venv/bin/python -m bench.quality", *(argv if argv is not None else sys.argv[1:])]
        )
    out = Path(__file__).resolve().parents[1] / "build" / "quality.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(quality_section({"quality": results})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
