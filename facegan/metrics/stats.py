"""Statistics for comparing runs image by image (docs/design.md, "Comparing runs").

Every run of a study is scored on the same test images with the same holes, so two variants
can be compared *paired*: per test image, variant minus baseline. That removes the large
image-to-image spread (some faces are simply harder) and leaves the effect of the change.

- :func:`mean_ci`: mean and 95% Student-t confidence interval over images.
- :func:`paired_difference`: mean of the per-image differences, its percentile bootstrap
  95% CI (resampling test images with replacement), and a two-sided p-value from a
  **sign-flip permutation test** (under "no difference" each per-image difference is as
  likely to have either sign; exact enumeration of all sign patterns up to 16 images, Monte
  Carlo above). The bootstrap CI and the permutation p answer different questions (how
  large, and could it be noise), so they can disagree slightly near the 5% edge.
- :func:`combine_seeds` / :func:`seed_spread`: with several training seeds, values are
  averaged per image over seeds before pairing (the CI then covers image sampling of a
  seed-averaged model), and the spread of the per-seed means is reported beside it.

Everything is deterministic: randomness comes from ``numpy.random.default_rng(seed)``.
Non-finite values (NaN) are left out: per image for :func:`mean_ci`, per pair for
:func:`paired_difference`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Monte Carlo resamples of the bootstrap and of the permutation test.
N_RESAMPLES = 10_000
#: Largest number of images whose 2^n sign patterns are enumerated exactly.
EXACT_SIGN_FLIP_MAX = 16
#: Resampled values held in memory at once (resamples x images).
_CHUNK_VALUES = 1 << 22


@dataclass(frozen=True)
class Estimate:
    """A mean with a confidence interval."""

    mean: float
    lo: float
    hi: float
    #: Number of finite values it was computed from.
    n: int

    @property
    def half(self) -> float:
        """Half-width of the interval (for ``mean ± half``)."""
        return (self.hi - self.lo) / 2


@dataclass(frozen=True)
class PairedDifference:
    """Mean per-image difference (variant - baseline), its bootstrap CI and p-value."""

    diff: float
    lo: float
    hi: float
    #: Two-sided sign-flip permutation p-value of "no difference".
    p: float
    #: Number of image pairs with both values finite.
    n: int


def _finite(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


def mean_ci(values, level: float = 0.95) -> Estimate:
    """Mean and Student-t CI of the finite ``values`` (NaN bounds with fewer than 2)."""
    from scipy import stats

    v = _finite(values)
    n = len(v)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(v.mean())
    if n < 2:
        return Estimate(mean, math.nan, math.nan, n)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return Estimate(mean, mean - half, mean + half, n)


def paired_difference(
    variant,
    baseline,
    level: float = 0.95,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> PairedDifference:
    """Paired comparison of two per-image score arrays of the same images, in order.

    ``diff`` is the mean of ``variant - baseline`` over images where both are finite;
    ``[lo, hi]`` its percentile bootstrap CI (``n_resamples`` resamples of the images);
    ``p`` the two-sided sign-flip permutation p-value (exact up to
    :data:`EXACT_SIGN_FLIP_MAX` images, else ``n_resamples`` random sign patterns with the
    ``(1 + hits) / (1 + n_resamples)`` correction, so it is never 0). With fewer than 2 pairs
    there is no interval and no p-value (NaN).
    """
    a = np.asarray(variant, dtype=np.float64).ravel()
    b = np.asarray(baseline, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same images: {a.shape} vs {b.shape}")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    n = len(d)
    if n < 2:  # one pair has no spread: no interval, no test (NaN; JSON null)
        return PairedDifference(float(d.mean()) if n else math.nan, math.nan, math.nan, math.nan, n)
    rng = np.random.default_rng(seed)
    lo, hi = _bootstrap_ci(d, level, n_resamples, rng)
    return PairedDifference(float(d.mean()), lo, hi, sign_flip_pvalue(d, n_resamples, rng), n)


def _bootstrap_ci(d: np.ndarray, level: float, n_resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    n = len(d)
    if np.all(d == d[0]):  # one image, or no spread: every resample has the same mean
        return float(d[0]), float(d[0])
    means = np.empty(n_resamples)
    step = max(1, _CHUNK_VALUES // n)
    for start in range(0, n_resamples, step):
        stop = min(n_resamples, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = d[idx].mean(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(lo), float(hi)


def sign_flip_pvalue(d, n_resamples: int = N_RESAMPLES, rng: np.random.Generator | None = None) -> float:
    """Two-sided p-value of "the per-image differences ``d`` are centred on 0".

    The statistic is ``|mean(d)|``; its null distribution flips the sign of each difference
    independently. All ``2^n`` patterns are enumerated for ``n <=`` :data:`EXACT_SIGN_FLIP_MAX`
    (the p-value is then exact), otherwise ``n_resamples`` random patterns are drawn.
    """
    d = _finite(d)
    n = len(d)
    if n == 0:
        return math.nan
    observed = abs(d.mean())
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))  # ties count as "as extreme"
    if n <= EXACT_SIGN_FLIP_MAX:
        patterns = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2.0 - 1.0
        return float(np.mean(np.abs(patterns @ d) / n >= observed - tol))
    rng = rng if rng is not None else np.random.default_rng(0)
    hits = 0
    step = max(1, _CHUNK_VALUES // n)
    for start in range(0, n_resamples, step):
        k = min(n_resamples, start + step) - start
        signs = rng.integers(0, 2, size=(k, n)) * 2.0 - 1.0
        hits += int(np.count_nonzero(np.abs(signs @ d) / n >= observed - tol))
    return (1 + hits) / (1 + n_resamples)


def combine_seeds(per_seed) -> np.ndarray:
    """``(seeds, images)`` per-image scores -> ``(images,)``: the mean over seeds of each
    image's finite values (NaN where an image has none)."""
    m = np.asarray(per_seed, dtype=np.float64)
    if m.ndim == 1:
        return m.copy()
    if m.ndim != 2:
        raise ValueError(f"expected (seeds, images) scores, got shape {m.shape}")
    finite = np.isfinite(m)
    count = finite.sum(axis=0)
    total = np.where(finite, m, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def seed_spread(per_seed, level: float = 0.95) -> Estimate:
    """Mean and Student-t CI over seeds of each seed's mean score (``(seeds, images)``).

    With one seed the bounds are NaN: one training run says nothing about run-to-run noise.
    """
    m = np.asarray(per_seed, dtype=np.float64)
    if m.ndim == 1:
        m = m[None]
    seed_means = [float(v.mean()) for v in (_finite(row) for row in m) if len(v)]
    return mean_ci(seed_means, level)
