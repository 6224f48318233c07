"""Moving pixels between a photo and an aligned face, and blending a restored face back.

Every face carries one 2x3 matrix ``M`` that maps the pixel-index coordinates of the image
it came from (the *canvas*: the photo, or for super-resolution the photo upscaled by the
model's scale) to the pixel-index coordinates of the aligned face (see
:mod:`facegan.faces.geometry`). :func:`facegan.faces.align.align_face` returns it. This module uses that
one matrix both ways:

* :func:`mask_to_aligned` carries a user's hole (canvas-sized) into the aligned frame;
* :func:`paste_face` carries the restored aligned face back, with a feathered alpha made in
  the aligned frame (:func:`hole_alpha` for inpainting, :func:`border_alpha` for SR), and
  blends it into the canvas.

Pixels where the warped alpha is exactly 0 are never written, so every pixel farther than
the feather (plus one aligned pixel of interpolation) from a restored region keeps its
value bit for bit. Only the canvas window covered by the aligned square is ever warped, so a
small face in a large photo costs little.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.transform import AffineTransform, warp

from facegan.faces.geometry import affine_scale, compose, homogeneous, invert_affine, translation

Window = tuple[slice, slice]


def canvas_window(m: np.ndarray, size: int, shape: tuple[int, int], margin: int = 2) -> Window | None:
    """The (rows, cols) window of a canvas of ``shape`` (H, W) covered by the aligned square.

    ``m`` maps canvas -> aligned (``size`` x ``size``). The window is the bounding box of the
    square's corners in the canvas, grown by ``margin`` pixels and clipped to the canvas;
    ``None`` when the square lies entirely outside it.
    """
    edge = [-0.5, size - 0.5]
    corners = np.array([[x, y] for x in edge for y in edge])
    inv = invert_affine(m)
    pts = corners @ inv[:, :2].T + inv[:, 2]
    x0 = max(math.floor(pts[:, 0].min()) - margin, 0)
    y0 = max(math.floor(pts[:, 1].min()) - margin, 0)
    x1 = min(math.ceil(pts[:, 0].max()) + margin + 1, shape[1])
    y1 = min(math.ceil(pts[:, 1].max()) + margin + 1, shape[0])
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


def _warp(src: np.ndarray, out_to_src: np.ndarray, shape: tuple[int, int], order: int, mode: str) -> np.ndarray:
    """Sample ``src`` at ``out_to_src(p)`` for every output pixel ``p``; float64 result."""
    return warp(
        np.asarray(src, dtype=np.float64),
        inverse_map=AffineTransform(matrix=homogeneous(out_to_src)),
        output_shape=shape,
        order=order,
        mode=mode,
        cval=0.0,
        preserve_range=True,
    )


def warp_to_canvas(aligned: np.ndarray, m: np.ndarray, window: Window, order: int = 3, mode: str = "constant") -> np.ndarray:
    """The aligned image ``aligned`` ((S, S) or (S, S, C)) resampled onto a canvas window.

    ``m`` maps canvas -> aligned. Returns float64 of the window's shape; outside the aligned
    square the value is 0 (``mode="constant"``) or the nearest edge value (``mode="edge"``).
    """
    rows, cols = window
    shape = (rows.stop - rows.start, cols.stop - cols.start)
    window_to_aligned = compose(m, translation(cols.start, rows.start))
    return _warp(aligned, window_to_aligned, shape, order, mode)


def mask_to_aligned(hole: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """A canvas-sized boolean hole ``hole`` (H, W) carried into the aligned frame: (S, S) bool.

    The hole is warped bilinearly and thresholded at 0.5. When the aligned face is much
    smaller than the face in the canvas, samples lie ``1 / scale`` canvas pixels apart and a
    thin stroke could fall between them, so the hole is first dilated by just enough canvas
    pixels (``ceil(0.5 / scale - 1)``) that every stroke reaches a sample.
    """
    window = canvas_window(m, size, hole.shape[:2])
    if window is None:
        return np.zeros((size, size), dtype=bool)
    part = np.asarray(hole, dtype=bool)[window]
    radius = math.ceil(0.5 / affine_scale(m) - 1.0)
    if radius > 0:
        part = ndimage.maximum_filter(part, size=2 * radius + 1)
    rows, cols = window
    aligned_to_window = invert_affine(compose(m, translation(cols.start, rows.start)))
    warped = _warp(part.astype(np.float64), aligned_to_window, (size, size), order=1, mode="constant")
    return warped >= 0.5


def hole_alpha(hole: np.ndarray, feather: float) -> np.ndarray:
    """Blend weights for an inpainted aligned face: 1 on the hole, fading to 0 outside it.

    The weight falls linearly with the distance from the hole and reaches 0 at
    ``feather + 1`` pixels, so the seam is spread over ``feather`` pixels of the unchanged
    surroundings (where the composite holds the input's own pixels) and the hole itself is
    taken whole from the model.
    """
    hole = np.asarray(hole, dtype=bool)
    if not hole.any():
        return np.zeros(hole.shape, dtype=np.float64)
    dist = ndimage.distance_transform_edt(~hole)
    return np.clip(1.0 - dist / (feather + 1.0), 0.0, 1.0)


def border_alpha(size: int, feather: float) -> np.ndarray:
    """Blend weights for a whole aligned face (SR): 1 inside, fading to 0 at the square's edge.

    The weight is the distance of each pixel centre from the square's edge over ``feather``
    (clipped to [0, 1]); ``feather <= 0`` gives all ones (a hard edge).
    """
    if feather <= 0:
        return np.ones((size, size), dtype=np.float64)
    c = np.arange(size, dtype=np.float64) + 0.5
    edge = np.minimum(c, size - c)
    return np.clip(np.minimum(edge[:, None], edge[None, :]) / feather, 0.0, 1.0)


#: Reductions up to this factor are warped as they are (a bicubic warp barely aliases there).
ANTIALIAS_FROM = 1.25


def antialias(face: np.ndarray, reduction: float) -> np.ndarray:
    """``face`` (S, S, 3) low-passed for a reduction by ``reduction`` (aligned pixels per
    canvas pixel): a Gaussian of sigma ``0.5 * sqrt(r^2 - 1)`` aligned pixels, which blurs a
    canvas pixel's worth of detail into one sample; unchanged below :data:`ANTIALIAS_FROM`."""
    if reduction <= ANTIALIAS_FROM:
        return face
    sigma = 0.5 * math.sqrt(reduction * reduction - 1.0)
    return ndimage.gaussian_filter(np.asarray(face, dtype=np.float64), sigma=(sigma, sigma, 0), mode="nearest")


def paste_face(canvas: np.ndarray, face: np.ndarray, alpha: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Blend an aligned ``face`` (S, S, 3) uint8 into ``canvas`` (H, W, 3) uint8, in place.

    ``alpha`` (S, S) weights the face in the aligned frame; ``m`` maps canvas -> aligned. The
    face is warped back bicubically, the alpha bilinearly; canvas pixels whose warped alpha is
    0 are left untouched. A face reduced on its way back (more than :data:`ANTIALIAS_FROM`
    aligned pixels per canvas pixel) is low-passed first (:func:`antialias`), so the result
    carries no aliasing. Returns the (H, W) float64 alpha as it landed on the canvas.
    """
    landed = np.zeros(canvas.shape[:2], dtype=np.float64)
    warped = warp_face(canvas.shape[:2], face, alpha, m)
    if warped is None:
        return landed
    window, f, a = warped
    blend_into(canvas, window, f, a)
    landed[window] = a
    return landed


def warp_face(shape: tuple[int, int], face: np.ndarray, alpha: np.ndarray,
              m: np.ndarray) -> tuple[Window, np.ndarray, np.ndarray] | None:
    """An aligned ``face`` and its blend weights ``alpha`` on the window of a canvas of ``shape``
    they cover: (window, face float64 (h, w, 3) in 0..255, alpha (h, w) in 0..1); None when they
    touch no canvas pixel. Reduced faces are anti-aliased (:func:`antialias`)."""
    size = face.shape[0]
    face = antialias(face, affine_scale(m))
    window = canvas_window(m, size, shape)
    if window is None:
        return None
    a = np.clip(warp_to_canvas(alpha, m, window, order=1), 0.0, 1.0)
    if not (a > 0).any():
        return None
    f = np.clip(warp_to_canvas(face, m, window, order=3, mode="edge"), 0.0, 255.0)
    return window, f, a


def blend_into(canvas: np.ndarray, window: Window, f: np.ndarray, a: np.ndarray) -> None:
    """``canvas[window] = canvas * (1 - a) + f * a`` where ``a > 0`` (uint8, in place)."""
    touched = a > 0
    region = canvas[window]
    w = a[touched][:, None]
    mixed = region[touched].astype(np.float64) * (1.0 - w) + f[touched] * w
    region[touched] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def hole_on_canvas(hole: np.ndarray, m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An aligned-frame hole (S, S) carried back onto a canvas of ``shape``: (H, W) bool."""
    out = np.zeros(shape, dtype=bool)
    window = canvas_window(m, hole.shape[0], shape)
    if window is not None:
        out[window] = warp_to_canvas(np.asarray(hole, dtype=np.float64), m, window, order=1) >= 0.5
    return out
