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
  ground truths, over a whole split, as FID does with Inception features: ``fd_dlib`` on dlib's
  128-d face descriptors (with ``--judge``), ``fid`` on the 2048-d pool3 features of FID's
  Inception v3 (:mod:`facegan.models.fid`, with ``--fid-weights``; the weights are not shipped).
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
    ``|mu_a - mu_b|² + tr(C_a + C_b - 2 (C_a C_b)^½)``, as FID computes it (NaN under 2 rows)."""
    return _frechet(_centred(a), _centred(b))


def frechet_ci(out: np.ndarray, gt: np.ndarray, other: np.ndarray | None = None, n_boot: int = 100,
               seed: int = 0) -> tuple[float, float, float]:
    """``(value, low, high)``: the Fréchet distance of ``out`` to ``gt`` (or, with ``other``, its
    difference to that of ``other`` to ``gt``, on the same images) and its 95% percentile
    bootstrap interval over images (the images resampled together for all sets)."""
    def stat(idx: np.ndarray | None) -> float:
        target = _centred(gt, idx)
        value = _frechet(_centred(out, idx), target)
        return value - _frechet(_centred(other, idx), target) if other is not None else value

    rng = np.random.default_rng(seed)
    n = len(out)
    boots = np.array([stat(rng.integers(0, n, n)) for _ in range(n_boot)])
    low, high = np.percentile(boots, [2.5, 97.5])
    return stat(None), float(low), float(high)


def _centred(x: np.ndarray, idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """``(mean, rows, n)`` of the rows ``x[idx]`` (all rows without ``idx``): ``rows`` holds each
    distinct row once, centred and scaled by the square root of its count, so that
    ``rows.T @ rows`` is their scatter matrix (``(n - 1)`` times the covariance) however often a
    bootstrap draws a row."""
    x = np.asarray(x, dtype=np.float64)
    if idx is None:
        mean = x.mean(axis=0)
        return mean, x - mean, len(x)
    distinct, counts = np.unique(idx, return_counts=True)
    rows = x[distinct]
    mean = counts @ rows / len(idx)
    return mean, np.sqrt(counts)[:, None] * (rows - mean), len(idx)


def _frechet(a: tuple[np.ndarray, np.ndarray, int], b: tuple[np.ndarray, np.ndarray, int]) -> float:
    """The Fréchet distance of two :func:`_centred` sets.

    ``tr (C_a C_b)^½`` is the sum of the square roots of the eigenvalues of ``C_a C_b`` (real and
    non-negative for two covariances), which is what FID's ``sqrtm`` sums. With ``R_a``, ``R_b``
    the centred rows (``C = R.T R / (n - 1)``), those non-zero eigenvalues are the squared
    singular values of ``R_a R_b.T`` over ``(n_a - 1)(n_b - 1)``: when there are fewer rows than
    dimensions (FID's 2,048 Inception features) that small matrix is used. Otherwise, with
    ``C_b = W W.T`` (its eigen-decomposition), they are those of the symmetric ``W.T C_a W``
    (rounding residue clipped). Both are exact, and faster than ``scipy.linalg.sqrtm``."""
    (mu_a, r_a, n_a), (mu_b, r_b, n_b) = a, b
    if min(n_a, n_b) < 2:
        return float("nan")
    if min(len(r_a), len(r_b)) <= r_a.shape[1]:
        singular = np.linalg.svd(r_a @ r_b.T, compute_uv=False)
        tr_root = singular.sum() / np.sqrt((n_a - 1) * (n_b - 1))
    else:  # C_b = W W.T, and C_a C_b has the eigenvalues of the symmetric W.T C_a W
        lam, vec = np.linalg.eigh(r_b.T @ r_b / (n_b - 1))
        w = vec * np.sqrt(np.clip(lam, 0, None))
        eig = np.linalg.eigvalsh(w.T @ (r_a.T @ r_a / (n_a - 1)) @ w)
        tr_root = np.sqrt(np.clip(eig, 0, None)).sum()
    traces = np.sum(r_a * r_a) / (n_a - 1) + np.sum(r_b * r_b) / (n_b - 1)
    return float(np.sum((mu_a - mu_b) ** 2) + traces - 2 * tr_root)
