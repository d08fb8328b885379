"""The real photo sets the quality benchmark and the head study run on, each laid out as
``<root>/train/<label>/*.jpg`` and ``<root>/val/<label>/*.jpg``.

* ``scenes``: ../shared/datasets/scenes (6 labels, 100 + 50 photos a label), when present;
* ``lfw-faces``: scikit-image's bundled ``lfw_subset`` (100 face crops from Labeled Faces in the
  Wild and 100 crops of other things, 25x25 grey), written out as JPEGs under build/: the only
  labelled set of real photos found inside an installed package (see docs/quality.md). 70 of
  each label train, 30 are val."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SCENES = ROOT.parent / "shared" / "datasets" / "scenes"
LFW = ROOT / "build" / "photo-sets" / "lfw-faces"
LFW_TRAIN_PER_LABEL = 70


def lfw_faces() -> Path:
    """scikit-image's lfw_subset as a photo set folder (written once)."""
    if (LFW / "val").is_dir():
        return LFW
    from skimage.data import lfw_subset  # a dev dependency, shipped with its wheel

    pictures = lfw_subset()  # [200, 25, 25] in [0, 1]: faces first, then the rest
    for label, members in (("face", pictures[:100]), ("not_face", pictures[100:])):
        for index, picture in enumerate(members):
            data = Image.fromarray(np.uint8(np.round(picture * 255)))
            split = "train" if index < LFW_TRAIN_PER_LABEL else "val"
            folder = LFW / split / label
            folder.mkdir(parents=True, exist_ok=True)
            name = hashlib.sha256(picture.tobytes()).hexdigest()[:12]
            data.save(folder / f"{index:03d}-{name}.jpg", quality=95)
    return LFW


def photo_sets() -> dict[str, Path]:
    sets = {"scenes": SCENES} if SCENES.is_dir() else {}
    sets["lfw-faces"] = lfw_faces()
    return sets
