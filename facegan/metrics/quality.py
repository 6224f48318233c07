"""Image-quality metrics with one fixed set of conventions (docs/design.md, "Metrics").

Every score in facegan (training logs, ``facegan eval``, reports) comes from here, so runs can
be compared with each other and with published numbers:

- Images are quantised to uint8 (``to_uint8``) before scoring. Inputs are uint8 ``HxWx3`` RGB
  images or ``NxHxWx3`` batches. A single image gives a ``float``; a batch gives a float64
  array of per-image scores. Averages are per image, then the mean over images (the caller
  takes that mean).
- **PSNR** = ``10 log10(255^2 / MSE)`` in float64; identical images give ``inf``.
  ``crop_border`` removes that many pixels from every border first (SR uses the scale).
- **PSNR-Y / SSIM-Y** use ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` with R, G, B in
  0..255: MATLAB ``rgb2ycbcr``, as BasicSR does, float64 and not rounded. (Full-range
  0.299/0.587/0.114 luma gives roughly 1.3 dB less on the same images; never mix the two.)
- **SSIM**: Gaussian window 11x11, sigma 1.5, population (co)variances, C1 = (0.01*255)^2,
  C2 = (0.03*255)^2, averaged over the valid region only (the 5-pixel border where the window
  does not fit is dropped), per channel then mean for RGB. It equals
  ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)``.
- **Inpainting** scores the composite over the whole image with PSNR/SSIM, plus ``hole_l1``
  (mean absolute error over hole pixels, all 3 channels, 0..1 scale, x100) and ``hole_psnr``
  (PSNR over hole pixels only). A mask is ``HxW`` or ``NxHxW``; nonzero = hole.
- **Identity**: ``identity_cosine`` is the cosine of L2-normalised embeddings, row by row.
- **Periodic pattern** (``periodic_peak``, a set-level diagnostic, not a per-image score): how
  far the mean power spectrum of the images' Y stands out at the frequencies of one period
  (the grid that sub-pixel or transposed convolutions leave), as a ratio to the bins around it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy.ndimage import correlate1d

METRIC_CONVENTIONS = """\
Metric conventions (facegan, docs/design.md):
  images quantised to uint8 before scoring; scores per image, then mean over images.
  PSNR = 10 log10(255^2 / MSE), float64; SR crops `scale` pixels off every border.
  PSNR-Y/SSIM-Y on Y = 16 + (65.481 R + 128.553 G + 24.966 B)/255 (MATLAB rgb2ycbcr, as BasicSR).
  SSIM: Gaussian window 11, sigma 1.5, valid region only, C1=(0.01*255)^2, C2=(0.03*255)^2,
    per channel then mean (RGB) or on Y.
  Inpainting: PSNR/SSIM of the composite over the whole image; hole L1 = mean |error| over
    hole pixels (0..1 scale) x100; hole PSNR over hole pixels only.
  Identity: cosine similarity of L2-normalised embeddings of output and ground truth."""

PEAK = 255.0
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # window 11 = 2 * 5 + 1, as skimage's truncate=3.5 gives for sigma 1.5
SSIM_C1 = (0.01 * PEAK) ** 2
SSIM_C2 = (0.03 * PEAK) ** 2
#: MATLAB rgb2ycbcr weights of R, G, B (for values in 0..1) and the offset of Y.
Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)
Y_OFFSET = 16.0

# Float values held per chunk of images; bounds the memory of batch metrics (~32 MB/array).
_CHUNK_VALUES = 1 << 22
_SSIM_CHUNK_VALUES = 1 << 17


# --------------------------------------------------------------------------- input checks


def _as_image_batch(x: Any, name: str) -> tuple[np.ndarray, bool]:
    """``x`` as a uint8 ``NxHxWx3`` array and whether it was a single ``HxWx3`` image."""
    arr = np.asarray(x)
    if arr.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 (0..255), got dtype {arr.dtype}")
    if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise ValueError(f"{name} must be HxWx3 or NxHxWx3 RGB, got shape {arr.shape}")
    return (arr[None], True) if arr.ndim == 3 else (arr, False)


def _image_pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    x, single = _as_image_batch(a, "a")
    y, _ = _as_image_batch(b, "b")
    if x.shape != y.shape or np.ndim(a) != np.ndim(b):
        raise ValueError(f"a and b must have the same shape, got {np.shape(a)} and {np.shape(b)}")
    return x, y, single


def _crop(x: np.ndarray, border: int) -> np.ndarray:
    """Drop ``border`` pixels from each side of the H and W axes of an ``NxHxWxC`` array."""
    if border < 0:
        raise ValueError(f"crop_border must be >= 0, got {border}")
    if border == 0:
        return x
    h, w = x.shape[1:3]
    if 2 * border >= min(h, w):
        raise ValueError(f"crop_border={border} leaves nothing of a {h}x{w} image")
    return x[:, border:-border, border:-border]


def _as_mask(mask: Any, batch: np.ndarray, single: bool) -> np.ndarray:
    """The mask as a bool ``NxHxW`` array (nonzero = hole), checked against the images."""
    m = np.asarray(mask)
    n, h, w = batch.shape[:3]
    if m.shape == (h, w):
        m = np.broadcast_to(m, (n, h, w))
    elif single or m.shape != (n, h, w):
        want = f"{h}x{w}" if single else f"{h}x{w} or {n}x{h}x{w}"
        raise ValueError(f"mask must be {want} to match the images, got shape {m.shape}")
    if not (m.dtype == np.bool_ or np.issubdtype(m.dtype, np.number)):
        raise ValueError(f"mask must be bool or numeric, got dtype {m.dtype}")
    return m != 0


def _chunks(n: int, values_per_item: int, budget: int = _CHUNK_VALUES) -> Iterator[slice]:
    step = max(1, budget // max(1, values_per_item))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _result(values: np.ndarray, single: bool) -> float | np.ndarray:
    return float(values[0]) if single else values


def _psnr_from_mse(mse: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(PEAK**2 / mse)


# --------------------------------------------------------------------------- colour


def rgb_to_y(img: Any) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` luma of uint8 RGB images, as float64 in [16, 235], not rounded.

    ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` with R, G, B in 0..255 (BasicSR's
    ``test_y_channel`` convention). ``img`` is ``HxWx3`` or ``NxHxWx3`` uint8; the result
    drops the channel axis (``HxW`` or ``NxHxW``).
    """
    x, single = _as_image_batch(img, "img")
    y = Y_OFFSET + (x.astype(np.float64) @ Y_WEIGHTS) / PEAK
    return y[0] if single else y


# --------------------------------------------------------------------------- PSNR / SSIM


def psnr(a: Any, b: Any, crop_border: int = 0, y_channel: bool = False) -> float | np.ndarray:
    """Peak signal-to-noise ratio in dB: ``10 log10(255^2 / MSE)``, computed in float64.

    ``a`` and ``b`` are uint8 ``HxWx3`` images or ``NxHxWx3`` batches of equal shape. The MSE
    is over all pixels and the 3 RGB channels, or over the MATLAB-Y channel (``rgb_to_y``)
    when ``y_channel`` is true. ``crop_border`` pixels are removed from every border first
    (super-resolution uses the scale). Identical images give ``inf``. Returns a float for one
    image, else a float64 array of per-image values (take their mean for a data set).
    """
    x, y, single = _image_pair(a, b)
    x, y = _crop(x, crop_border), _crop(y, crop_border)
    mse = np.empty(len(x), dtype=np.float64)
    for s in _chunks(len(x), int(np.prod(x.shape[1:]))):
        if y_channel:
            d = rgb_to_y(x[s]) - rgb_to_y(y[s])
        else:
            d = x[s].astype(np.float64) - y[s].astype(np.float64)
        mse[s] = np.mean((d * d).reshape(len(d), -1), axis=1)
    return _result(_psnr_from_mse(mse), single)


def _gaussian_window() -> np.ndarray:
    """The normalised 11-tap Gaussian (sigma 1.5) that skimage's SSIM uses."""
    t = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    w = np.exp(-0.5 * (t / SSIM_SIGMA) ** 2)
    return w / w.sum()


_WINDOW = _gaussian_window()


def _valid_blur(x: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable Gaussian over the last two axes (H, W), kept only where the window fits.

    Both passes filter along the last, contiguous axis (much faster in scipy than a strided
    axis), so the result comes back with those two axes swapped: ``(..., W', H')``. SSIM
    only averages the map, so the order does not matter.
    """
    r = SSIM_RADIUS
    x = correlate1d(x, window, axis=-1, mode="nearest")[..., r:-r]
    x = np.ascontiguousarray(x.swapaxes(-1, -2))
    return correlate1d(x, window, axis=-1, mode="nearest")[..., r:-r]


def _ssim_batch(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-image SSIM of float64 ``NxCxHxW`` arrays: per-channel mean SSIM, then mean over C."""
    mu_x, mu_y, e_xx, e_yy, e_xy = _valid_blur(np.stack([x, y, x * x, y * y, x * y]), _WINDOW)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    num = (2 * mu_xy + SSIM_C1) * (2 * (e_xy - mu_xy) + SSIM_C2)
    den = (mu_xx + mu_yy + SSIM_C1) * (e_xx - mu_xx + e_yy - mu_yy + SSIM_C2)
    return (num / den).mean(axis=(2, 3)).mean(axis=1)


def _channels_first(x: np.ndarray) -> np.ndarray:
    return np.array(x.transpose(0, 3, 1, 2), dtype=np.float64, order="C")


def ssim(a: Any, b: Any, crop_border: int = 0, y_channel: bool = False) -> float | np.ndarray:
    """Structural similarity (Wang et al. 2004) of uint8 RGB images on the 0..255 scale.

    Gaussian window 11x11 with sigma 1.5, population (co)variances, C1 = (0.01*255)^2,
    C2 = (0.03*255)^2; the SSIM map is averaged over the valid region only (the 5-pixel
    border where the window does not fit is dropped), per RGB channel then mean over
    channels, or on the MATLAB-Y channel when ``y_channel`` is true. ``crop_border`` pixels
    are removed from every border before filtering. Matches ``skimage.metrics
    .structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=255)``. Vectorised over the batch. Returns a float for one image, else a
    float64 array of per-image values. Images (after cropping) must be at least 11x11.
    """
    x, y, single = _image_pair(a, b)
    x, y = _crop(x, crop_border), _crop(y, crop_border)
    h, w = x.shape[1:3]
    if min(h, w) < 2 * SSIM_RADIUS + 1:
        raise ValueError(f"SSIM needs images of at least 11x11 after cropping, got {h}x{w}")
    out = np.empty(len(x), dtype=np.float64)
    # Small chunks (two 128x128 images) keep the filtering in cache (faster than large ones).
    for s in _chunks(len(x), int(np.prod(x.shape[1:])), budget=_SSIM_CHUNK_VALUES):
        if y_channel:
            xs, ys = rgb_to_y(x[s])[:, None], rgb_to_y(y[s])[:, None]
        else:
            xs, ys = _channels_first(x[s]), _channels_first(y[s])
        out[s] = _ssim_batch(xs, ys)
    return _result(out, single)


# --------------------------------------------------------------------------- inpainting


def _hole_sums(a: Any, b: Any, mask: Any, power: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Per image: sum of ``|a-b|**power`` over hole pixels (3 channels) and the value count."""
    x, y, single = _image_pair(a, b)
    m = _as_mask(mask, x, single)
    err = np.empty(len(x), dtype=np.float64)
    for s in _chunks(len(x), int(np.prod(x.shape[1:]))):
        d = np.abs(x[s].astype(np.float64) - y[s].astype(np.float64)) ** power
        err[s] = np.einsum("nhwc,nhw->n", d, m[s].astype(np.float64))
    count = 3.0 * m.reshape(len(m), -1).sum(axis=1)
    return err, count, single


def hole_l1(a: Any, b: Any, mask: Any) -> float | np.ndarray:
    """Mean absolute error over hole pixels, on a 0..1 scale, times 100.

    ``a``, ``b``: uint8 ``HxWx3`` / ``NxHxWx3``; ``mask``: ``HxW`` or ``NxHxW`` (bool, uint8
    or float; nonzero = hole; an ``HxW`` mask applies to every image of a batch). The mean is
    over all 3 channels of the hole pixels: ``100 * sum(|a-b| / 255) / (3 * holes)``. An image
    whose mask has no hole gives ``nan``. Returns a float for one image, else a float64 array.
    """
    err, count, single = _hole_sums(a, b, mask, power=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = 100.0 * err / (PEAK * count)
    return _result(values, single)


def hole_psnr(a: Any, b: Any, mask: Any) -> float | np.ndarray:
    """PSNR in dB over hole pixels only: ``10 log10(255^2 / MSE_hole)``, float64.

    The MSE is over all 3 channels of the pixels where ``mask`` is nonzero (``HxW`` or
    ``NxHxW``, as for ``hole_l1``). Identical holes give ``inf``; an image whose mask has no
    hole gives ``nan``. Returns a float for one image, else a float64 array.
    """
    err, count, single = _hole_sums(a, b, mask, power=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(count > 0, _psnr_from_mse(err / count), np.nan)
    return _result(values, single)


# --------------------------------------------------------------------------- identity


def _embeddings(e: Any, name: str) -> np.ndarray:
    if hasattr(e, "detach"):  # a torch tensor, on any device and dtype
        e = e.detach().to("cpu").double().numpy()
    arr = np.asarray(e, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be D or NxD embeddings, got shape {arr.shape}")
    return arr


def identity_cosine(emb_a: Any, emb_b: Any) -> np.ndarray:
    """Row-wise cosine similarity of L2-normalised embeddings, as a float64 ``(N,)`` array.

    ``emb_a`` and ``emb_b`` are ``NxD`` (or ``D``, treated as ``1xD``) numpy arrays or torch
    tensors of the same shape, e.g. face-recognition embeddings of the output and of the
    ground truth. Each row is divided by its L2 norm in float64 first, so the result is the
    cosine whether or not the network already normalises; 1 = same direction. A zero
    embedding has no direction and raises ``ValueError``.
    """
    x, y = _embeddings(emb_a, "emb_a"), _embeddings(emb_b, "emb_b")
    if x.shape != y.shape:
        raise ValueError(f"emb_a and emb_b must have the same shape, got {x.shape} and {y.shape}")
    nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
    if np.any(nx == 0) or np.any(ny == 0):
        raise ValueError("an embedding is all zeros; its cosine similarity is undefined")
    return np.einsum("nd,nd->n", x / nx[:, None], y / ny[:, None])


# --------------------------------------------------------------------------- quantisation


def to_uint8(images: Any) -> np.ndarray:
    """Model images (torch float ``NCHW`` or ``CHW`` in [-1, 1]) as uint8 ``NHWC``/``HWC``.

    ``round((x + 1) * 127.5)`` clipped to 0..255, computed on the tensor's device in float32
    (round half to even), then moved to the CPU. This is the quantisation every metric
    assumes: score what would be saved to disk, not the raw float output.
    """
    import torch

    if not isinstance(images, torch.Tensor):
        raise ValueError(f"to_uint8 expects a torch tensor, got {type(images).__name__}")
    if images.ndim not in (3, 4):
        raise ValueError(f"to_uint8 expects NCHW or CHW, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"to_uint8 expects a float tensor in [-1, 1], got {images.dtype}")
    x = images.detach().float().add(1.0).mul(127.5).clamp(0.0, 255.0).round()
    x = x.to(torch.uint8)
    x = x.permute(0, 2, 3, 1) if x.ndim == 4 else x.permute(1, 2, 0)
    return x.contiguous().cpu().numpy()


# --------------------------------------------------------------------------- periodic pattern


#: Chebyshev distances (in frequency bins) of the bins a peak is compared with: past its own
#: window-widened lobe (1 bin), close enough to share the spectrum's local level.
PEAK_RING = (2, 3)


def periodic_peak(images: Any, period: int) -> float:
    """How strongly a batch of images repeats with ``period`` pixels: 1.0 means no peak.

    Each image's Y (``rgb_to_y``) minus its mean, times a 2-D Hann window, gives a power
    spectrum; the spectra are averaged over the batch. At each frequency of that period along
    the axes and the diagonal, ``(0, S/period)``, ``(S/period, 0)`` and ``(S/period, S/period)``,
    the power is divided by the median power of the bins at Chebyshev distance 2 to 3
    (``PEAK_RING``) around it; the largest of these ratios is returned. Natural images give about
    1-2; a generator's upsampling grid gives tens. ``images`` is an ``NxHxWx3`` uint8 batch whose
    sides are multiples of ``period``.
    """
    x, _ = _as_image_batch(images, "images")
    n, h, w = x.shape[:3]
    if period < 2 or h % period or w % period:
        raise ValueError(f"period must be at least 2 and divide the image sides ({h}x{w}), got {period}")
    window = np.outer(np.hanning(h), np.hanning(w))
    power = np.zeros((h, w), dtype=np.float64)
    for chunk in _chunks(n, h * w * 3):
        y = rgb_to_y(x[chunk])
        y = (y - y.mean(axis=(1, 2), keepdims=True)) * window
        power += (np.abs(np.fft.fft2(y)) ** 2).sum(axis=0)
    if power.sum() < 1e-6:  # flat images (what is left is rounding noise): no pattern
        return 1.0
    lo, hi = PEAK_RING
    around = [(du, dv) for du in range(-hi, hi + 1) for dv in range(-hi, hi + 1) if max(abs(du), abs(dv)) >= lo]
    ratios = []
    for u, v in [(0, w // period), (h // period, 0), (h // period, w // period)]:
        ref = np.median([power[(u + du) % h, (v + dv) % w] for du, dv in around])
        ratios.append(power[u, v] / ref if ref > 0 else float("inf"))
    return float(max(ratios))
