"""Measure resize/crop policies and JPEG draft mode on the scenes data set (docs/preprocessing.md).

    .venv/bin/python scripts/measure_preprocessing.py [--data /work/shared/datasets/scenes]

For each variant: frozen EfficientNet-Lite0 features for train and val, a multinomial logistic
regression (numpy, L2, C=1 like scikit-learn's default; scikit-learn's own LogisticRegression
too when it is importable) trained on train, accuracy on val, and the decode + preprocess time per
image. The scenes photos are square 150x150 JPEGs, where (b) and (c) coincide and draft mode
does nothing, so most rows use copies derived in memory: the middle 4:3, 3:2 and 2:3 band of
each photo (non-square framing, where crop and squash differ), and copies upscaled to 600 and
1200 px and re-encoded as JPEG (quality 90), where draft mode decodes at 1/2 and 1/4 scale.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from kestrel.vision.backbone import ensure_backbone
from kestrel.vision.preprocess import preprocess
from kestrel.vision.session import create_session

Split = tuple[list[bytes], np.ndarray]
BANDS = [("4:3 landscape", 4 / 3), ("3:2 landscape", 3 / 2), ("2:3 portrait", 2 / 3)]


def load_split(root: Path) -> tuple[Split, list[str]]:
    labels = sorted(p.name for p in root.iterdir() if p.is_dir())
    data: list[bytes] = []
    targets: list[int] = []
    for index, label in enumerate(labels):
        for file in sorted((root / label).iterdir()):
            data.append(file.read_bytes())
            targets.append(index)
    return (data, np.array(targets)), labels


def upscale(images: list[bytes], side: int) -> list[bytes]:
    out = []
    for data in images:
        image = Image.open(io.BytesIO(data)).convert("RGB").resize((side, side), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def softmax_regression(x: np.ndarray, y: np.ndarray, c: float = 1.0, steps: int = 3000) -> np.ndarray:
    """Multinomial logistic regression, objective sum(loss) + ||W||²/(2C) as scikit-learn's,
    minimised by Nesterov-accelerated gradient descent (the problem is small and convex)."""
    n, d = x.shape
    k = int(y.max()) + 1
    xb = np.hstack([x, np.ones((n, 1))])
    onehot = np.eye(k)[y]
    reg = np.full((d + 1, 1), 1.0 / (c * n))
    reg[-1] = 0.0  # the intercept is not penalised
    lipschitz = 0.5 * np.linalg.norm(xb, 2) ** 2 / n + 1.0 / (c * n)
    w = np.zeros((d + 1, k))
    velocity = w.copy()
    for step in range(steps):
        z = xb @ velocity
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        grad = xb.T @ (p - onehot) / n + reg * velocity
        w_next = velocity - grad / lipschitz
        velocity = w_next + step / (step + 3) * (w_next - w)
        w = w_next
    return w


def accuracy(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    xb = np.hstack([x, np.ones((len(x), 1))])
    return float(((xb @ w).argmax(1) == y).mean())


def sklearn_accuracy(xt: np.ndarray, yt: np.ndarray, xv: np.ndarray, yv: np.ndarray) -> float | None:
    try:
        from sklearn.linear_model import LogisticRegression  # type: ignore[import-not-found]
    except ImportError:
        return None
    model = LogisticRegression(max_iter=2000).fit(xt, yt)
    return float(model.score(xv, yv))


def band(images: list[bytes], ratio: float) -> list[bytes]:
    """The middle band of each picture with width/height ``ratio``, as a wider (ratio > 1) or
    taller (< 1) photo of the same scene would frame it; PNG so no second JPEG loss."""
    out = []
    for data in images:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        width, height = image.size
        if ratio >= 1:
            new_h = round(width / ratio)
            box = (0, (height - new_h) // 2, width, (height - new_h) // 2 + new_h)
        else:
            new_w = round(height * ratio)
            box = ((width - new_w) // 2, 0, (width - new_w) // 2 + new_w, height)
        buffer = io.BytesIO()
        image.crop(box).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def embed(
    images: list[bytes], prep: Callable[[bytes], np.ndarray], run: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    chunks = [np.stack([prep(d) for d in images[i : i + 10]]) for i in range(0, len(images), 10)]
    return np.concatenate([run(chunk) for chunk in chunks])


def prep_time_ms(images: list[bytes], prep: Callable[[bytes], np.ndarray], sample: int = 200) -> float:
    """Best of 3 passes over ``sample`` images, one at a time as a classify request does."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for data in images[:sample]:
            prep(data)
        best = min(best, (time.perf_counter() - started) / min(sample, len(images)) * 1000)
    return best


def repeated_splits(y: np.ndarray, repeats: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified 2/3 : 1/3 splits of the pooled images (same sizes as the shipped train/val)."""
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(repeats):
        train, val = [], []
        for label in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == label))
            cut = len(members) * 2 // 3
            train.append(members[:cut])
            val.append(members[cut:])
        splits.append((np.concatenate(train), np.concatenate(val)))
    return splits


Variant = tuple[str, str, list[bytes], Callable[[bytes], np.ndarray]]  # group, name, images, prep
POLICIES: list[tuple[str, Callable[..., np.ndarray]]] = [
    ("(a) shorter side 256, centre crop 224", lambda d, **kw: preprocess(d, policy="crop", resize=256, **kw)),
    ("(b) shorter side 224, centre crop 224", lambda d, **kw: preprocess(d, policy="crop", resize=224, **kw)),
    ("(c) squash to 224x224", lambda d, **kw: preprocess(d, policy="squash", resize=224, **kw)),
    ("(d) squash to 256x256, centre crop 224", lambda d, **kw: preprocess(d, policy="squash", resize=256, **kw)),
]


def variants_for(images: list[bytes], args_policies: list[str]) -> list[Variant]:
    variants: list[Variant] = []
    framings = [("scenes as shipped (square)", images)]
    framings += [(f"{name} band of each photo", band(images, ratio)) for name, ratio in BANDS]
    for group, framed in framings:
        variants += [(group, name, framed, prep) for name, prep in POLICIES]
    for side in (600, 1200):
        print(f"making {side} px JPEG copies ...", file=sys.stderr)
        big = upscale(images, side)
        for name, prep in POLICIES:
            if args_policies and name[:3] not in args_policies:
                continue
            variants += [
                (f"{side} px JPEG copies", f"{name}, full decode", big, partial(prep, draft=False)),
                (f"{side} px JPEG copies", f"{name}, draft mode", big, partial(prep, draft=True)),
            ]
    return variants


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/datasets/scenes"))
    parser.add_argument("--repeats", type=int, default=20, help="random stratified re-splits")
    parser.add_argument(
        "--draft-policies", nargs="*", default=["(a)", "(d)"], help="policies timed with and without draft mode"
    )
    args = parser.parse_args()
    backbone = ensure_backbone()
    session = create_session(backbone.path)

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run([backbone.features_name], {backbone.input_name: batch})[0]

    (train_x, train_y), labels = load_split(args.data / "train")
    (val_x, val_y), _ = load_split(args.data / "val")
    images, y = train_x + val_x, np.concatenate([train_y, val_y])
    shipped = (np.arange(len(train_x)), np.arange(len(train_x), len(images)))
    splits = repeated_splits(y, args.repeats)
    print(f"scenes: {len(train_x)} train / {len(val_x)} val images, labels {labels}", file=sys.stderr)

    print(
        "| images | variant | val acc, shipped split (numpy / sklearn) "
        f"| val acc, {args.repeats} re-splits, mean ± sd | vs first row of its group, paired mean ± sd "
        "| decode + preprocess ms/img |"
    )
    print("|---|---|---|---|---|---|")
    baselines: dict[str, np.ndarray] = {}
    for group, name, variant_images, prep in variants_for(images, args.draft_policies):
        print(f"embedding: {group}: {name} ...", file=sys.stderr)
        x = embed(variant_images, prep, run)
        prep_ms = prep_time_ms(variant_images, prep)
        acc = accuracy(softmax_regression(x[shipped[0]], y[shipped[0]], steps=1000), x[shipped[1]], y[shipped[1]])
        sk = sklearn_accuracy(x[shipped[0]], y[shipped[0]], x[shipped[1]], y[shipped[1]])
        sk_text = f"{sk:.1%}" if sk is not None else "n/a"
        resplit = np.array([accuracy(softmax_regression(x[t], y[t], steps=1000), x[v], y[v]) for t, v in splits])
        diff = resplit - baselines.setdefault(group, resplit)
        print(
            f"| {group} | {name} | {acc:.1%} / {sk_text} | {resplit.mean():.1%} ± {resplit.std():.1%} "
            f"| {diff.mean():+.1%} ± {diff.std():.1%} | {prep_ms:.2f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
