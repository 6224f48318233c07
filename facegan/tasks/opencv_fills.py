"""Classical inpainting peers that users could run instead of facegan: OpenCV's fills.

``facegan eval`` scores them beside the model, by the same code as every row, when the optional
extra is installed (``pip install 'facegan[peers]'``, OpenCV with its contrib modules):

* ``telea``: ``cv2.inpaint(..., cv2.INPAINT_TELEA)`` (Telea 2004, fast marching), radius 3 px;
* ``fsr_fast``: ``cv2.xphoto.inpaint(..., cv2.xphoto.INPAINT_FSR_FAST)`` (frequency-selective
  reconstruction, Genser et al. 2018), the best classical fill that runs here.

Both take the masked face as uint8 (as a user's photo is) and return the filled face; pixels
outside the hole keep their input values. Note OpenCV's conventions: ``cv2.inpaint`` marks the
hole with non-zero mask pixels, ``cv2.xphoto.inpaint`` with zeros.
"""

from __future__ import annotations

import numpy as np
import torch

#: The module the peers need (the ``peers`` extra).
REQUIRES = "cv2"
#: Telea's neighbourhood radius, in pixels.
TELEA_RADIUS = 3


def opencv_fill(masked: torch.Tensor, mask: torch.Tensor, method: str) -> torch.Tensor:
    """``masked`` (B,3,S,S) in [-1, 1] with holes ``mask`` (B,1,S,S), 1 = hole, filled by OpenCV's
    ``method`` (``telea`` or ``fsr_fast``); (B,3,S,S) in [-1, 1] on ``masked``'s device."""
    import cv2

    from facegan.metrics.quality import to_uint8

    known = to_uint8(masked)  # (B,S,S,3) RGB
    holes = mask[:, 0].detach().cpu().numpy() > 0.5
    out = np.empty_like(known)
    for i, (img, hole) in enumerate(zip(known, holes)):
        if not hole.any():
            out[i] = img
            continue
        bgr = np.ascontiguousarray(img[..., ::-1])
        if method == "telea":
            filled = cv2.inpaint(bgr, hole.astype(np.uint8) * 255, TELEA_RADIUS, cv2.INPAINT_TELEA)
        elif method == "fsr_fast":
            filled = np.zeros_like(bgr)
            cv2.xphoto.inpaint(bgr, (~hole).astype(np.uint8) * 255, filled, cv2.xphoto.INPAINT_FSR_FAST)
        else:
            raise ValueError(f"unknown OpenCV fill {method!r}")
        filled = filled[..., ::-1]
        out[i] = np.where(hole[..., None], filled, img)
    result = torch.from_numpy(out).permute(0, 3, 1, 2).float() / 127.5 - 1
    return result.to(masked.device)
