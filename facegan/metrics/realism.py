"""Realism metrics: what PSNR cannot see (docs/design.md, "Metrics").

PSNR rewards the average of all plausible faces, a blur. These metrics see the blur:

* :func:`detail` - the gradient energy of the output over that of the ground truth in a region
  (1 = as sharp as the real face; a blur scores well below 1, invented noise above it). Grey is
  0.299 R + 0.587 G + 0.114 B; the gradient is the 3x3 Sobel pair (reflected borders), the
  energy the sum of the squared x and y responses, averaged over the region.
* :func:`landmark_distance` - where dlib's 68-point predictor puts the features of the output
  against where it puts those of the ground truth (a fill that moves an eye is wrong however
  sharp it is); computed by :class:`facegan.scoring.judge.DlibJudge`.
* :func:`frechet_distance` - how far the *distribution* of the outputs is from that of the
  ground truths, over a whole split, as FID does with Inception features; facegan's
  ``fd_dlib`` uses dlib's 128-d face descriptors (FID's Inception weights cannot be had
  offline; ``--fid-weights`` adds FID proper).
"""

from __future__ import annotations

import numpy as np

#: ITU-R BT.601 luma weights of the grey image the gradients are taken on.
GREY = (0.299, 0.587, 0.114)
#: The Sobel derivative along x (columns); its transpose is the one along y.
SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
#: Pixels of an SR face's border left out of its detail (the crop has no context there).
SR_BORDER = 8
#: Pixels a hole is eroded by before its detail is measured (its edge touches the known photo).
HOLE_EROSION = 2


def gradient_energy(images_u8: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` float64 Sobel gradient energy ``gx² + gy²`` of ``(N, H, W, 3)`` uint8 images."""
    from scipy import ndimage

    grey = images_u8.astype(np.float64) @ np.asarray(GREY)
    gx = ndimage.correlate(grey, SOBEL_X[None], mode="reflect")
    gy = ndimage.correlate(grey, SOBEL_X.T[None], mode="reflect")
    return gx * gx + gy * gy


def detail(out_u8: np.ndarray, gt_u8: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Per image, the mean gradient energy of ``out_u8`` over that of ``gt_u8`` inside
    ``region`` ((N, H, W) bool); NaN where the region is empty or the truth is flat there."""
    e_out, e_gt = gradient_energy(out_u8), gradient_energy(gt_u8)
    out = np.full(len(out_u8), np.nan)
    for i, r in enumerate(region):
        if r.any() and e_gt[i][r].mean() > 0:
            out[i] = e_out[i][r].mean() / e_gt[i][r].mean()
    return out


def eroded(holes: np.ndarray, pixels: int = HOLE_EROSION) -> np.ndarray:
    """``(N, H, W)`` bool holes eroded by ``pixels`` (a 3x3 square each time)."""
    from scipy import ndimage

    return np.stack([ndimage.binary_erosion(h, np.ones((3, 3), bool), iterations=pixels) for h in holes])


def inner_face(n: int, size: int, border: int = SR_BORDER) -> np.ndarray:
    """``(n, size, size)`` bool: the face less ``border`` pixels on every side."""
    region = np.zeros((n, size, size), bool)
    region[:, border:size - border, border:size - border] = True
    return region


#: dlib's 68 landmarks by facial region (0-based, iBUG 300-W order).
LANDMARKS = {"eyes": tuple(range(36, 48)), "mouth": tuple(range(48, 68)), "all": tuple(range(68))}


def landmark_distance(points_out: np.ndarray, points_gt: np.ndarray, which: tuple[int, ...],
                      unit: float = 1.0) -> np.ndarray:
    """Per image, the mean Euclidean distance between the landmarks ``which`` of ``(N, 68, 2)``
    point sets, divided by ``unit`` (the enlargement the points were found at)."""
    idx = list(which)
    return np.linalg.norm(points_out[:, idx] - points_gt[:, idx], axis=-1).mean(axis=1) / unit


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to the rows of ``a`` and ``b`` ((N, D)):
    ``|mu_a - mu_b|² + tr(C_a + C_b - 2 (C_a C_b)^½)``, as FID computes it. The trace of the
    matrix square root is the sum of the square roots of the eigenvalues of ``C_a C_b`` (real
    and non-negative for two covariances; rounding residue clipped), which is what FID's
    ``sqrtm`` sums, ten times faster."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    c_a, c_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eig = np.linalg.eigvals(c_a @ c_b)
    tr_root = np.sqrt(np.clip(eig.real, 0, None)).sum()
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(c_a) + np.trace(c_b) - 2 * tr_root)


def frechet_ci(out: np.ndarray, gt: np.ndarray, other: np.ndarray | None = None, n_boot: int = 100,
               seed: int = 0) -> tuple[float, float, float]:
    """``(value, low, high)``: the Fréchet distance of ``out`` to ``gt`` (or, with ``other``, its
    difference to that of ``other`` to ``gt``, on the same images) and its 95% percentile
    bootstrap interval over images (the images resampled together for all sets)."""
    def stat(idx: np.ndarray) -> float:
        value = frechet_distance(out[idx], gt[idx])
        return value - frechet_distance(other[idx], gt[idx]) if other is not None else value

    rng = np.random.default_rng(seed)
    n = len(out)
    boots = np.array([stat(rng.integers(0, n, n)) for _ in range(n_boot)])
    low, high = np.percentile(boots, [2.5, 97.5])
    return stat(np.arange(n)), float(low), float(high)
