"""Align a face onto facegan's template from its five landmarks.

:func:`align_face` warps a photo so that five landmarks land on the template of
:mod:`facegan.faces.geometry`, and returns the 2x3 matrix it used (photo -> aligned), which is
what pasting a restored face back into the photo needs. All coordinates are pixel-index
coordinates (see :mod:`facegan.faces.geometry`).

The similarity transform maps the detected landmarks onto the template (least squares). When it
shrinks the photo, the photo is first downscaled with a LANCZOS filter so that the remaining
warp is close to scale 1 (no aliasing); the remaining warp is bicubic. Where the aligned square
reaches past the photo's edge, the photo is continued by mirror reflection (as FFHQ does); that
continuation is blurred more, and faded towards the photo's median colour, the farther it lies
from the edge, so the padding reads as background rather than as more faces.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.transform import AffineTransform, warp

from facegan.faces.geometry import (
    affine_scale, compose, homogeneous, invert_affine, resize_matrix, similarity_matrix, template_points, translation,
)
from facegan.faces.images import as_rgb_array

#: Bumped whenever detection or alignment changes what a prepared dataset contains, so
#: that datasets prepared by an older facegan are recognised as stale.
ALIGNMENT_VERSION = "mtcnn512-score0.9-similarity-lanczos-bicubic-reflectblur-v2"

#: Padding: (Gaussian sigma, distance of full strength), both as fractions of the output
#: side, of the blurs blended into the mirrored continuation of the photo.
_PAD_BLURS = ((0.02, 0.05), (0.08, 0.3))
#: Padding: distance (fraction of the side) at which it has faded to the photo's median colour.
_PAD_FADE = 0.6



def _prescale(rgb: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Downscale ``rgb`` by ``scale`` (< 1) with LANCZOS; also return the 2x3 map old -> new.

    Returns the image unchanged (identity map) when the rounded size would not shrink.
    """
    h, w = rgb.shape[:2]
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    if scale >= 1.0 or (new_w >= w and new_h >= h):
        return rgb, translation(0.0, 0.0)
    small = Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.LANCZOS)
    return np.asarray(small), resize_matrix((w, h), (new_w, new_h))


def _distance_outside(src_xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Distance (source pixels) of each point from the photo's area, 0 for points inside."""
    x, y = src_xy[..., 0], src_xy[..., 1]
    dx = np.maximum(np.maximum(-0.5 - x, x - (width - 0.5)), 0.0)
    dy = np.maximum(np.maximum(-0.5 - y, y - (height - 0.5)), 0.0)
    return np.hypot(dx, dy)


def _soften_padding(warped: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """Blend the mirrored padding of ``warped`` towards blurred copies and the median colour.

    ``outside`` holds each output pixel's distance past the photo's edge (0 inside). Mirror
    images of a face would otherwise read as extra faces; blurring them more with distance
    and fading to the median colour of the real photo pixels keeps the padding plausible
    background (FFHQ's recipe, measured in output pixels).
    """
    size = warped.shape[0]
    out = warped
    for sigma, ramp in _PAD_BLURS:
        s = max(sigma * size, 0.5)
        blurred = ndimage.gaussian_filter(out, sigma=(s, s, 0), mode="reflect")
        weight = np.clip(outside / (ramp * size), 0.0, 1.0)[..., None]
        out = out + (blurred - out) * weight
    inside = outside == 0
    median = np.median(warped[inside] if inside.any() else warped.reshape(-1, 3), axis=0)
    weight = np.clip(outside / (_PAD_FADE * size), 0.0, 1.0)[..., None]
    return out + (median - out) * weight


def align_face(
    image: Image.Image | np.ndarray,
    landmarks: np.ndarray,
    size: int,
    template: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``image`` so that ``landmarks`` land on the template in a ``size`` square.

    ``landmarks`` are five (x, y) points in the image's pixel-index coordinates, in
    :mod:`facegan.faces.geometry` order; ``template`` (fractions of the side) defaults to
    ``geometry.TEMPLATE``. Returns ``(aligned, M)``: the aligned face as uint8
    ``(size, size, 3)`` and the 2x3 similarity matrix mapping image pixel-index coordinates
    to aligned ones (``geometry.apply_affine(M, landmarks)`` is the least-squares fit of the
    template points). Shrinking is antialiased (LANCZOS pre-downscale), the warp is bicubic,
    and regions past the photo's edge are reflect-padded and blurred (never black).
    """
    rgb = as_rgb_array(image)
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if not np.all(np.isfinite(points)):
        raise ValueError("align_face got non-finite landmarks")
    if np.ptp(points, axis=0).max() < 1e-3:
        raise ValueError("align_face got degenerate landmarks (all at one point)")
    m = similarity_matrix(points, template_points(size, template))
    src, pre = _prescale(rgb, affine_scale(m))
    remaining = compose(m, invert_affine(pre))  # prescaled photo -> aligned

    out_to_src = invert_affine(remaining)
    warped = warp(
        src,
        inverse_map=AffineTransform(matrix=homogeneous(out_to_src)),
        output_shape=(size, size),
        order=3,
        mode="reflect",
        preserve_range=True,
    )

    # Soften the mirrored continuation, the more so the farther a pixel lies outside the
    # photo (distance measured in output pixels).
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    grid = np.stack([cols, rows], axis=-1)
    src_xy = grid @ out_to_src[:, :2].T + out_to_src[:, 2]
    outside = _distance_outside(src_xy, src.shape[1], src.shape[0]) * affine_scale(remaining)
    if outside.max() > 0:
        warped = _soften_padding(warped, outside)

    aligned = np.clip(np.rint(warped), 0, 255).astype(np.uint8)
    return aligned, m
