"""Putting an inpainted fill into a photo at the photo's own resolution (``restore --task inpaint``).

The model fills a 128 px aligned face; the face in a photo may be 500 px wide. Stretching the
fill bicubically gives a soft rectangle with a visible border, a privacy blur. Instead:

1. **A learned enlargement** (:func:`enlarge_fill`): a fill that must grow more than
   :data:`ENLARGE_FROM` times on its way back is first upscaled by the generic SPAN upsampler
   that ships with facegan (x2, x4, or x8 as x4 then x2), so the warp back only ever shrinks a
   little or stretches by at most that much.
2. **A gradient-domain seam** (:func:`seamless`): the fill keeps its own gradients and meets the
   photo's values on the blended region's border (Pérez et al. 2003, Poisson image editing),
   so colour and tone follow the surrounding skin and no border shows. The correction is a
   membrane (a harmonic function), smooth by nature, so it is solved on a grid
   :data:`MEMBRANE_STEP` times coarser and enlarged.
3. **The photo's grain** (:func:`match_grain`): a fill is cleaner than the photo around it;
   luminance noise is added until the fill's fine-scale noise equals that of a ring of photo
   around the hole (a robust estimate: the median absolute deviation of a high-pass).
4. **Grey stays grey** (:func:`is_grey`): in a grey photo the fill is made grey before it is
   blended (a model trained on colour faces paints colour).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

#: A fill that would be stretched more than this many times is upscaled by SPAN first.
ENLARGE_FROM = 1.25
#: The membrane of :func:`seamless` is solved on a grid this many times coarser.
MEMBRANE_STEP = 4
#: Width (canvas pixels) of the ring of photo around the region where its grain is measured.
GRAIN_RING = 12
#: A photo whose channels differ by at most this much everywhere is grey.
GREY_TOLERANCE = 2


def is_grey(photo: np.ndarray) -> bool:
    """Whether an RGB photo is grey (its three channels equal within :data:`GREY_TOLERANCE`)."""
    p = photo.astype(np.int16)
    return int(max(np.abs(p[..., 0] - p[..., 1]).max(), np.abs(p[..., 1] - p[..., 2]).max())) <= GREY_TOLERANCE


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma (:data:`facegan.metrics.realism.GREY`) of an RGB image, float64."""
    from facegan.metrics.realism import GREY

    return np.asarray(image, dtype=np.float64) @ np.asarray(GREY)


def enlarge_fill(face: np.ndarray, stretch: float) -> tuple[np.ndarray, int]:
    """``face`` uint8 (S, S, 3) upscaled by SPAN when it would be stretched ``stretch`` times
    (canvas pixels per aligned pixel) on its way back; returns (face, factor used: 1, 2, 4 or 8)."""
    if stretch <= ENLARGE_FROM:
        return face, 1
    from facegan.models.span import span_upscale_uint8

    factor = next((f for f in (2, 4) if stretch <= f * ENLARGE_FROM), 8)
    return span_upscale_uint8(face, factor), factor


def seamless(fill: np.ndarray, photo: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``fill`` (H, W, 3) float64 corrected so that it meets ``photo`` on the border of
    ``region`` (H, W) bool and keeps its own gradients inside: ``fill + d``, ``d`` harmonic in
    the region with ``d = photo - fill`` just outside it. Pixels outside the region are the
    photo's."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    h, w = region.shape
    step = MEMBRANE_STEP
    hc, wc = math.ceil(h / step), math.ceil(w / step)
    diff = photo.astype(np.float64) - fill
    # the coarse grid: a coarse cell is unknown when any of its pixels is in the region; the
    # known cells carry the mean difference of their outside pixels
    pad = ((0, hc * step - h), (0, wc * step - w))
    inside = np.pad(region, pad, constant_values=False).reshape(hc, step, wc, step)
    unknown = inside.any(axis=(1, 3))
    outside = ~inside
    count = outside.sum(axis=(1, 3))
    known = np.zeros((hc, wc, 3))
    for c in range(3):
        d = np.pad(diff[..., c], pad).reshape(hc, step, wc, step)
        known[..., c] = (d * outside).sum(axis=(1, 3)) / np.maximum(count, 1)
    if not unknown.any() or unknown.all():  # nothing to solve, or no photo around to meet
        return np.where(region[..., None], fill, photo.astype(np.float64))
    # the 5-point Laplacian over the unknown cells, built with whole-array operations: each
    # unknown cell's in-grid neighbours count on the diagonal; unknown ones are matrix entries,
    # known ones move their value to the right-hand side
    n = int(unknown.sum())
    index = -np.ones((hc, wc), dtype=np.int64)
    index[unknown] = np.arange(n)
    ys, xs = np.nonzero(unknown)
    diag = np.zeros(n)
    rhs = np.zeros((n, 3))
    rows, cols = [np.arange(n)], [np.arange(n)]
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        yy, xx = ys + dy, xs + dx
        inside_grid = (yy >= 0) & (yy < hc) & (xx >= 0) & (xx < wc)
        diag += inside_grid
        yy, xx, me = yy[inside_grid], xx[inside_grid], index[ys[inside_grid], xs[inside_grid]]
        neighbour_unknown = unknown[yy, xx]
        rows.append(me[neighbour_unknown])
        cols.append(index[yy[neighbour_unknown], xx[neighbour_unknown]])
        np.add.at(rhs, me[~neighbour_unknown], known[yy[~neighbour_unknown], xx[~neighbour_unknown]])
    vals = [diag] + [-np.ones(len(r)) for r in rows[1:]]
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    solved = np.asarray(spsolve(a.tocsc(), rhs)).reshape(n, 3)
    coarse = known.copy()
    coarse[unknown] = solved
    d = ndimage.zoom(coarse, (step, step, 1), order=1, mode="nearest", grid_mode=True)[:h, :w]
    return np.where(region[..., None], fill + d, photo.astype(np.float64))


def grain_sigma(image: np.ndarray, where: np.ndarray) -> float:
    """Fine-scale noise of ``image``'s luma at ``where`` (H, W) bool: 1.4826 * the median
    absolute deviation of the luma minus its Gaussian blur (sigma 1 px); 0 with too few pixels."""
    if where.sum() < 64:
        return 0.0
    y = luma(image.astype(np.float64))
    high = (y - ndimage.gaussian_filter(y, 1.0))[where]
    return float(1.4826 * np.median(np.abs(high - np.median(high))))


def match_grain(fill: np.ndarray, photo: np.ndarray, region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``fill`` (H, W, 3) float64 with luma noise added inside ``region`` until its grain equals
    that of the photo's ring around the region (:data:`GRAIN_RING` pixels); unchanged when the
    fill is already as grainy."""
    ring = ndimage.binary_dilation(region, iterations=GRAIN_RING) & ~region
    target, have = grain_sigma(photo, ring), grain_sigma(fill, region)
    if target <= have:
        return fill
    # white noise of sigma s has a high-pass (minus a sigma-1 blur) of sigma about 0.86 s
    sigma = math.sqrt(target * target - have * have) / 0.86
    noise = rng.normal(0.0, sigma, region.shape)
    return fill + (noise * region)[..., None]
