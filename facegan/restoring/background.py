"""The whole photo, upscaled for ``restore --task sr`` before the faces go in (docs/design.md).

The output photo is ``scale`` times the input (``--scale``). Everything but the faces comes from
the learned generic upsampler that ships with facegan, SPAN (x2, x4; x8 is x4 then x2,
:func:`facegan.models.span.span_upscale`), run in overlapping tiles so a large photo never needs
more than one tile's memory; ``--background bicubic`` asks for plain bicubic instead (faster,
softer). Faces too large for any face model stay as this upsampler made them.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Background = Literal["span", "bicubic"]
BACKGROUNDS: tuple[str, ...] = ("span", "bicubic")

#: Input pixels per tile side, and the overlap each tile reads on every side (SPAN's receptive
#: field is about 20 px: an overlap past it makes the tiled result equal the untiled one).
TILE = 256
OVERLAP = 24


def upscale_photo(photo: np.ndarray, scale: int, how: Background = "span") -> np.ndarray:
    """``photo`` uint8 (H, W, 3) -> uint8 (H * scale, W * scale, 3)."""
    from PIL import Image

    h, w = photo.shape[:2]
    if scale == 1:
        return photo.copy()
    if how == "bicubic":
        return np.asarray(Image.fromarray(photo).resize((w * scale, h * scale), Image.Resampling.BICUBIC))
    return _span_tiled(photo, scale)


def _span_tiled(photo: np.ndarray, scale: int) -> np.ndarray:
    from facegan.models.span import span_upscale_uint8

    h, w = photo.shape[:2]
    out = np.empty((h * scale, w * scale, 3), dtype=np.uint8)
    for y0 in range(0, h, TILE):
        for x0 in range(0, w, TILE):
            y1, x1 = min(y0 + TILE, h), min(x0 + TILE, w)
            ry0, rx0 = max(y0 - OVERLAP, 0), max(x0 - OVERLAP, 0)
            ry1, rx1 = min(y1 + OVERLAP, h), min(x1 + OVERLAP, w)
            up = span_upscale_uint8(photo[ry0:ry1, rx0:rx1], scale)
            oy, ox = (y0 - ry0) * scale, (x0 - rx0) * scale
            out[y0 * scale:y1 * scale, x0 * scale:x1 * scale] = up[oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale]
    return out
