"""The aligned-face geometry every part of facegan agrees on.

Coordinates: a point ``(x, y)`` is in *pixel-index* coordinates, so the centre of the pixel in
row ``i`` and column ``j`` is ``(j, i)``. Continuous coordinates (pixel ``k`` covers
``[k, k + 1)``) are pixel-index coordinates plus 0.5; resizing maps continuous coordinates
linearly. Landmark order is always: left eye, right eye, nose tip, left mouth corner, right
mouth corner ("left" = the image's left, as in CelebA and MTCNN).

The template: facegan's aligned face is CelebA's official aligned face (178x218), cropped to
the square box ``CELEBA_SQUARE_BOX`` (rows 20..197) and resized. ``TEMPLATE`` holds the five
template landmarks in that square as fractions of its side (continuous coordinates / side).
They are the mean landmarks of official aligned CelebA images, so a packed CelebA dataset and
a folder of photos aligned with MTCNN land on the same geometry.
"""

from __future__ import annotations

import numpy as np

#: Mean 5-point landmarks of CelebA's official ``img_align_celeba`` (178x218, pixel-index).
CELEBA_ALIGNED_LANDMARKS = np.array(
    [[69.0, 112.8], [107.9, 112.6], [88.1, 134.4], [70.8, 152.7], [105.8, 152.6]],
    dtype=np.float64,
)
#: Size of CelebA's aligned images (width, height).
CELEBA_ALIGNED_SIZE = (178, 218)
#: The square face crop inside a 178x218 aligned CelebA image: (left, top, right, bottom),
#: right/bottom exclusive. The centre 178x178 square, as most CelebA GAN papers use.
CELEBA_SQUARE_BOX = (0, 20, 178, 198)

TEMPLATE_NAME = "celeba-aligned-square-v1"
#: The five template landmarks as fractions of the square's side (continuous coordinates).
TEMPLATE = (
    CELEBA_ALIGNED_LANDMARKS + 0.5 - np.array(CELEBA_SQUARE_BOX[:2], dtype=np.float64)
) / (CELEBA_SQUARE_BOX[2] - CELEBA_SQUARE_BOX[0])


def template_points(size: int, template: np.ndarray | None = None) -> np.ndarray:
    """The template landmarks in pixel-index coordinates of a ``size`` x ``size`` image."""
    t = TEMPLATE if template is None else np.asarray(template, dtype=np.float64)
    return t * size - 0.5


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) src -> dst.

    Umeyama's method without reflection. Returns a 2x3 matrix ``M`` with
    ``dst ~= M[:, :2] @ src + M[:, 2]``.
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError("similarity_matrix needs two point sets of the same shape (>= 2 points)")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    var_s = (s**2).sum() / len(src)
    scale = (sig * sign).sum() / var_s if var_s > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    full = np.vstack([np.asarray(m, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to an (N, 2) array of points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ np.asarray(m)[:, :2].T + np.asarray(m)[:, 2]


def affine_scale(m: np.ndarray) -> float:
    """The (geometric mean) scale factor of a 2x3 affine matrix."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(m)[:, :2]))))


# --------------------------------------------------------------------------------------------
# Building and combining maps (2x3 affine matrices on pixel-index coordinates)
# --------------------------------------------------------------------------------------------


def homogeneous(m: np.ndarray) -> np.ndarray:
    """A 2x3 affine matrix as a 3x3 homogeneous one."""
    return np.vstack([np.asarray(m, dtype=np.float64), [0.0, 0.0, 1.0]])


def compose(*maps: np.ndarray) -> np.ndarray:
    """The 2x3 map applying ``maps`` right to left: ``compose(a, b)(p) = a(b(p))``."""
    out = np.eye(3)
    for m in maps:
        out = out @ homogeneous(m)
    return out[:2]


def translation(dx: float, dy: float) -> np.ndarray:
    """The 2x3 map ``p -> p + (dx, dy)``."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


def scale_matrix(fx: float, fy: float | None = None) -> np.ndarray:
    """The pixel-index map of scaling an image by ``fx`` (and ``fy``, default ``fx``).

    Resizing maps continuous coordinates linearly, so ``x' = (x + 0.5) * fx - 0.5``.
    """
    fy = fx if fy is None else fy
    return np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5]])


def resize_matrix(src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> np.ndarray:
    """The pixel-index map of a plain resize from ``src_wh`` to ``dst_wh`` (width, height)."""
    return scale_matrix(dst_wh[0] / src_wh[0], dst_wh[1] / src_wh[1])


def box_resize_matrix(box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """The map from an image's pixel-index coordinates to those of ``box`` resized to ``size``.

    ``box`` is (left, top, right, bottom), right/bottom exclusive: the crop shifts continuous
    coordinates by the box corner, then the resize scales them by ``size / side``.
    """
    left, top, right, bottom = box
    sx, sy = size / (right - left), size / (bottom - top)
    return np.array([[sx, 0.0, (0.5 - left) * sx - 0.5], [0.0, sy, (0.5 - top) * sy - 0.5]])


def rescale_points(points: np.ndarray, factor: float) -> np.ndarray:
    """Pixel-index ``points`` of an image scaled by ``factor`` (continuous coordinates scale)."""
    return (np.asarray(points, np.float64) + 0.5) * factor - 0.5


def pixel_to_normalized(size: int) -> np.ndarray:
    """The map from pixel-index coordinates of a ``size``-pixel side to the normalised
    coordinates of ``torch.nn.functional.affine_grid`` / ``grid_sample`` with
    ``align_corners=False`` (pixel ``k`` is centred at ``(2k + 1) / size - 1``)."""
    return np.array([[2 / size, 0.0, 1 / size - 1], [0.0, 2 / size, 1 / size - 1]])
