"""An endless supply of different real JPEGs: crops of the sample photos at random places and sizes,
each stamped with its serial number in a corner so no two are ever the same picture."""

from __future__ import annotations

import random
import threading

from PIL import ImageDraw

from tests.photos import SAMPLE_NAMES, encode, sample

_BITS = 20


class PhotoMaker:
    def __init__(self, seed: str, min_side: int = 64, max_side: int = 256) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._serial = 0
        self.min_side, self.max_side = min_side, max_side

    def __call__(self) -> bytes:
        with self._lock:
            serial, rng = self._serial, random.Random(self._rng.random())
            self._serial += 1
        if serial >= 1 << _BITS:
            raise ValueError("out of serial numbers")
        base = sample(rng.choice(SAMPLE_NAMES))
        width, height = base.size
        box = rng.randint(min(width, height) // 4, min(width, height))
        left, top = rng.randint(0, width - box), rng.randint(0, height - box)
        side = rng.randint(self.min_side, self.max_side)
        image = base.crop((left, top, left + box, top + box)).resize((side, side))
        draw = ImageDraw.Draw(image)
        cell = max(2, side // (_BITS + 2))
        for bit in range(_BITS):  # the serial number as black and white cells along the top edge
            colour = (255, 255, 255) if serial >> bit & 1 else (0, 0, 0)
            draw.rectangle((bit * cell, 0, bit * cell + cell - 1, cell - 1), fill=colour)
        return encode(image, quality=rng.randint(70, 95))
