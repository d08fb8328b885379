"""The head study (docs/quality.md): Kestrel's head, its variants and scikit-learn's
LogisticRegression on the same frozen features, on every photo set at hand.

Each set is ``<root>/train/<label>/*.jpg`` + ``<root>/val/<label>/*.jpg``. For 20, 50 and all
training images a label (3 resplits: which images make the subset), every variant is fitted on
the subset and scored on val/. Features come from the training job's own Embedder (cached), so
the study measures the head alone.

Run: ``.venv/bin/python -m bench.head_study [--sets scenes lfw]`` (prints a Markdown table)."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.common import say
from bench.photo_features import PhotoSet, load_split
from bench.photo_sets import photo_sets
from kestrel.training.head import STRENGTHS, HeadOptions, train_head

OLD_STRENGTHS = (1e-4, 1e-3, 1e-2, 1e-1, 3e-1)
RESPLITS = 3
SIZES = (20, 50, None)  # None: every training image

#: Kestrel's head before this study, and one change at a time from there to what ships.
VARIANTS: dict[str, HeadOptions] = {
    "before: standardised, grid 1e-4..0.3, 3 folds, each augmented view weighs 1": HeadOptions(
        strengths=OLD_STRENGTHS, folds=3, standardise=True
    ),
    "not standardised (else as before)": HeadOptions(strengths=OLD_STRENGTHS, folds=3, standardise=False),
    "not standardised, grid 1e-4..1 in half decades": HeadOptions(strengths=STRENGTHS, folds=3, standardise=False),
    "shipped: ... and 5 folds (each augmented view weighs 1)": HeadOptions(),
    "shipped, but the 4 augmented views together weigh 1": HeadOptions(augmented_view_weight=0.25),
    "shipped, but standardised": HeadOptions(standardise=True),
    "shipped, plain views only": HeadOptions(augmented=False),
    "shipped, but each augmented view weighs 0.5": HeadOptions(augmented_view_weight=0.5),
}


@dataclass(frozen=True)
class Subset:
    views: list[np.ndarray]
    targets: np.ndarray


def subset(train: PhotoSet, per_label: int | None, resplit: int) -> Subset:
    """``per_label`` images of each label, chosen by a seeded permutation (None: all)."""
    rng = np.random.default_rng(1000 + resplit)
    chosen: list[int] = []
    for label in range(len(train.labels)):
        members = np.flatnonzero(train.targets == label)
        chosen += list(members if per_label is None else rng.permutation(members)[:per_label])
    chosen.sort()
    return Subset([train.views[i] for i in chosen], train.targets[chosen])


def reference(c: float) -> Callable[[Subset, int], Callable[[np.ndarray], np.ndarray]]:
    """scikit-learn's LogisticRegression on the plain views, no standardisation (the reference)."""
    from sklearn.linear_model import LogisticRegression  # a dev dependency: the benchmark's only

    def fit(data: Subset, outputs: int) -> Callable[[np.ndarray], np.ndarray]:
        model = LogisticRegression(C=c, max_iter=5000)
        model.fit(np.stack([v[0] for v in data.views]), data.targets)
        return lambda x: np.asarray(model.predict_proba(x))

    return fit


def kestrel(options: HeadOptions) -> Callable[[Subset, int], Callable[[np.ndarray], np.ndarray]]:
    def fit(data: Subset, outputs: int) -> Callable[[np.ndarray], np.ndarray]:
        return train_head(data.views, data.targets, outputs, False, options).probabilities

    return fit


def study(
    train: PhotoSet,
    val: PhotoSet,
    sizes: tuple[int | None, ...] = SIZES,
    resplits: int = RESPLITS,
    only: str = "",
    flips: bool = True,
) -> dict[str, dict[str, Any]]:
    """variant -> size -> {mean, sd, runs}: val accuracy in %. ``only``: variants whose name
    contains it (and the references)."""
    fitters: dict[str, Callable[[Subset, int], Callable[[np.ndarray], np.ndarray]]] = {
        "reference: scikit-learn LogisticRegression C=1 (default)": reference(1.0),
        "reference: scikit-learn LogisticRegression C=0.1": reference(0.1),
        **{name: kestrel(options) for name, options in VARIANTS.items()},
    }
    plain = np.stack([v[0] for v in val.views])
    outputs = len(train.labels)
    results: dict[str, dict[str, Any]] = {}
    for name, fitter in fitters.items():
        if only and only not in name and not name.startswith("reference"):
            continue
        results[name] = {}
        if flips and name.startswith("shipped:"):
            results[name + " + flip test-time averaging"] = {}
        for size in sizes:
            runs, flipped, seconds = [], [], []
            for resplit in range(resplits if size is not None else 1):
                data = subset(train, size, resplit)
                started = time.perf_counter()
                predict = fitter(data, outputs)
                seconds.append(time.perf_counter() - started)
                probs = predict(plain)
                runs.append(100 * float((probs.argmax(axis=1) == val.targets).mean()))
                averaged = (probs + predict(val.mirrored)) / 2
                flipped.append(100 * float((averaged.argmax(axis=1) == val.targets).mean()))
            key = "all" if size is None else str(size)
            results[name][key] = _figures(runs, seconds)
            if flips and name.startswith("shipped:"):
                results[name + " + flip test-time averaging"][key] = _figures(flipped, seconds)
            say(f"  {name} @ {key}/label: {results[name][key]['mean']:.1f} % ({results[name][key]['seconds']:.1f} s)")
    return results


def _figures(runs: list[float], seconds: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.mean(runs),
        "sd": statistics.stdev(runs) if len(runs) > 1 else 0.0,
        "runs": runs,
        "seconds": statistics.median(seconds),
    }


def markdown(
    name: str, results: dict[str, dict[str, Any]], train: PhotoSet, val: PhotoSet, resplits: int = RESPLITS
) -> str:
    sizes = list(next(iter(results.values())))
    lines = [
        f"**{name}** ({len(train.labels)} labels, {len(train.views)} training / {len(val.views)} val images; "
        f"val accuracy %, mean ± sd over {resplits} resplits; 'all' is one fit)",
        "",
        "| head | " + " | ".join(f"{s} / label" for s in sizes) + " | fit s (all) |",
        "|---|" + "---:|" * (len(sizes) + 1),
    ]
    for variant, by_size in results.items():
        cells = [
            f"{by_size[s]['mean']:.1f} ± {by_size[s]['sd']:.1f}" if s != "all" else f"{by_size[s]['mean']:.1f}"
            for s in sizes
        ]
        seconds = by_size["all"]["seconds"] if "all" in by_size else float("nan")
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {seconds:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sets", nargs="*", default=None, help="which photo sets (default: every one found)")
    parser.add_argument("--resplits", type=int, default=RESPLITS)
    parser.add_argument("--sizes", nargs="*", default=["20", "50", "all"], help="images a label; 'all'")
    parser.add_argument("--only", default="", help="only the variants whose name contains this")
    args = parser.parse_args(argv)
    sizes = tuple(None if size == "all" else int(size) for size in args.sizes)
    tables = []
    for name, root in photo_sets().items():
        if args.sets and name not in args.sets:
            continue
        say(f"{name}: {root}")
        train, val = load_split(root, "train"), load_split(root, "val", augmented=False)
        results = study(train, val, sizes, args.resplits, args.only)
        tables.append(markdown(name, results, train, val, args.resplits))
    print("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
