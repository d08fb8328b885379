"""The mislabelled-image finder on real photos (docs/quality.md): how many deliberately swapped
labels it lists, and how many correctly labelled photos it lists beside them, at its cut
(margin >= 0.5) and at others.

For each photo set at hand (bench/photo_sets.py: ``scenes`` when ../shared is there, and
``lfw-faces`` always), its train/ photos with ``--share`` of them (3 seeded draws) given another
label at random, then the training job's own recipe: the head fitted with its strength search,
out-of-fold probabilities from 5 folds of the same recipe refitted (the job's path when no
cross-validation runs; with cross-validation each fold also searches its strength), and the
margins of :mod:`kestrel.training.mislabelled`. A draw with nothing swapped shows what the finder
lists on the set as it is (photos of a mountain with a glacier, a street of buildings: the
hard cases it should not flood the list with).

Run: ``.venv/bin/python -m bench.mislabelled [--sets scenes lfw-faces] [--share 0.05]``
(prints a Markdown table)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from bench.common import say
from bench.photo_features import load_split
from bench.photo_sets import photo_sets
from kestrel.training.evaluation import out_of_fold_predictions
from kestrel.training.head import Head, refit, train_head
from kestrel.training.mislabelled import MIN_MARGIN

CUTS = (0.3, MIN_MARGIN, 0.7)
DRAWS = 3


def margins(views: Sequence[np.ndarray], targets: np.ndarray, outputs: int) -> np.ndarray:
    """Each image's margin (0 where the model agrees with its label), by the job's recipe."""
    evaluated = train_head(views, targets, outputs, False)

    def fit(fold_views: Sequence[np.ndarray], fold_targets: np.ndarray) -> Head:
        return refit(evaluated, fold_views, fold_targets)

    probabilities, _ = out_of_fold_predictions(views, targets, outputs, False, fit)
    rows = np.arange(len(targets))
    predicted = probabilities.argmax(axis=1)
    return np.where(predicted != targets, probabilities[rows, predicted] - probabilities[rows, targets], 0.0)


def swap(targets: np.ndarray, outputs: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``share`` of the images given another label (chosen at random); the swapped images' mask."""
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(targets))[: round(share * len(targets))]
    swapped = targets.copy()
    swapped[chosen] = (targets[chosen] + rng.integers(1, outputs, len(chosen))) % outputs
    mask = np.zeros(len(targets), dtype=bool)
    mask[chosen] = True
    return swapped, mask


def row(name: str, images: int, swapped: int, runs: list[tuple[np.ndarray, np.ndarray]]) -> str:
    cells = [name, str(images), str(swapped)]
    for cut in CUTS:
        found = [int((m >= cut - 1e-9)[mask].sum()) for m, mask in runs]
        alarms = [int((m >= cut - 1e-9)[~mask].sum()) for m, mask in runs]
        recall = f"{sum(found)} / {swapped * len(runs)}" if swapped else "-"
        cells.append(f"{recall}; {' / '.join(map(str, alarms))}")
    swapped_margins = np.concatenate([m[mask] for m, mask in runs]) if swapped else np.array([])
    cells.append(f"{np.median(swapped_margins):.2f}" if swapped else "-")
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="*", default=None, help="photo sets (default: every one at hand)")
    parser.add_argument("--share", type=float, default=0.05, help="share of the images given another label")
    args = parser.parse_args(argv)
    sets = photo_sets()
    lines = [
        f"Measured with `.venv/bin/python -m bench.mislabelled --share {args.share}`: "
        f"found = swapped images listed (all draws), false alarms = correctly labelled images listed (each draw).",
        "",
        "| set | train images | swapped a draw | "
        + " | ".join(f"margin >= {cut}: found; false alarms" for cut in CUTS)
        + " | median margin of a swapped image |",
        "|---|---|---|" + "---|" * len(CUTS) + "---|",
    ]
    for name in args.sets or sorted(sets):
        data = load_split(sets[name], "train")
        outputs = len(data.labels)
        say(f"{name}: {len(data.targets)} images, {outputs} labels")
        clean = [(margins(data.views, data.targets, outputs), np.zeros(len(data.targets), dtype=bool))]
        lines.append(row(f"{name}, as it is", len(data.targets), 0, clean))
        runs = []
        for draw in range(DRAWS):
            targets, mask = swap(data.targets, outputs, args.share, seed=draw)
            runs.append((margins(data.views, targets, outputs), mask))
            say(f"{name}: draw {draw + 1} of {DRAWS} done")
        lines.append(row(f"{name}, {args.share:.0%} swapped", len(data.targets), int(runs[0][1].sum()), runs))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
