"""How a task's restored face goes back into its photo, declared as data.

A task declares one :class:`PasteRule` (``Task.paste_rule``); :meth:`facegan.tasks.base.Task.paste_alpha`
turns it into the blend weights (S, S) of a restored face in the aligned frame, which
:func:`facegan.faces.pasteback.paste_face` warps onto the photo. Two regions exist:

* ``hole``: only the hole comes from the model; the weight fades to 0 over a seam of
  unchanged pixels around it (inpainting: the known pixels are the photo's own);
* ``face``: the whole aligned square comes from the model; the weight fades to 0 inside its
  border, into the (upscaled) photo (super-resolution).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

#: The regions a rule may blend.
REGIONS = ("hole", "face")


@dataclass(frozen=True)
class PasteRule:
    """What the blend weight of a restored face is, and what ``aligned`` changes."""

    region: Literal["hole", "face"]
    """``hole``: the hole, feathered outwards; ``face``: the whole face, its border feathered inwards."""
    feather: float
    """Width of the seam, as a fraction of the model's size."""
    min_px: float = 0.0
    """The seam is at least this many aligned pixels wide."""
    hard_when_aligned: bool = False
    """No seam when the photo is the aligned face itself (there is no photo around it to fade into)."""

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise ValueError(f"unknown paste region {self.region!r}; expected one of: {', '.join(REGIONS)}")
        if self.feather < 0 or self.min_px < 0:
            raise ValueError("a paste seam cannot be narrower than 0 pixels")

    def seam_px(self, size: int, aligned: bool) -> float:
        """Width of the seam in aligned pixels for a model of side ``size``."""
        if aligned and self.hard_when_aligned:
            return 0.0
        return max(self.min_px, self.feather * size)

    def alpha(self, size: int, hole: np.ndarray | None, aligned: bool) -> np.ndarray:
        """Blend weights (S, S) float64, 1 = take the model's pixel; ``hole`` (S, S), 1 = hole,
        is read by ``hole`` rules only."""
        from facegan.faces.pasteback import border_alpha, hole_alpha

        if self.region == "hole":
            return hole_alpha(hole, self.seam_px(size, aligned))
        return border_alpha(size, self.seam_px(size, aligned))
