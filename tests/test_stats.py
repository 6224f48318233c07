"""Paired statistics on synthetic per-image scores whose true difference is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facegan.metrics.stats import (
    PairedDifference, combine_seeds, mean_ci, paired_difference, seed_spread, sign_flip_pvalue,
)


def _pair(n: int, effect: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Baseline scores with a large image-to-image spread (like PSNR over faces) and a variant
    that adds ``effect`` plus a little per-image noise: only a paired test sees it."""
    rng = np.random.default_rng(seed)
    baseline = 24.0 + 3.0 * rng.standard_normal(n)
    return baseline + effect + 0.3 * rng.standard_normal(n), baseline


def test_mean_ci_is_the_student_t_interval():
    from scipy import stats

    v = np.array([1.0, 2.0, 4.0, 7.0, np.nan])
    est = mean_ci(v)
    lo, hi = stats.t.interval(0.95, 3, loc=3.5, scale=np.std(v[:4], ddof=1) / 2)
    assert (est.n, est.mean) == (4, 3.5)
    assert est.lo == pytest.approx(lo) and est.hi == pytest.approx(hi)
    assert est.half == pytest.approx((hi - lo) / 2)
    single = mean_ci([5.0])
    assert single.mean == 5.0 and math.isnan(single.half)
    assert math.isnan(mean_ci([np.nan]).mean)


def test_known_difference_is_covered_and_significant():
    variant, baseline = _pair(400, effect=0.39, seed=1)
    d = paired_difference(variant, baseline)
    assert d.n == 400
    assert d.lo < 0.39 < d.hi  # the CI covers the true effect
    assert d.hi - d.lo < 0.1  # and pairing makes it narrow despite a 3 dB spread over images
    assert d.p < 0.001
    # unpaired, the effect hides inside the spread of the images
    assert mean_ci(variant).lo < mean_ci(baseline).hi


def test_no_difference_is_not_significant():
    """Per-image noise that cancels exactly (each +e has a -e elsewhere): the mean difference
    is 0, so the CI sits around 0 and no sign pattern is less extreme than the observed one."""
    rng = np.random.default_rng(2)
    baseline = 24.0 + 3.0 * rng.standard_normal(400)
    noise = 0.3 * rng.standard_normal(200)
    variant = baseline + rng.permutation(np.concatenate([noise, -noise]))
    d = paired_difference(variant, baseline)
    assert abs(d.diff) < 1e-12
    assert d.lo < 0.0 < d.hi and abs(d.lo + d.hi) < 0.01
    assert d.p > 0.99


def test_coverage_over_repeated_experiments():
    """Across 40 synthetic studies the 95% CI misses the true effect rarely and the test
    (at 5%) rejects a true null rarely."""
    misses = false_alarms = 0
    for k in range(40):
        variant, baseline = _pair(60, effect=0.1, seed=100 + k)
        d = paired_difference(variant, baseline, n_resamples=2000, seed=k)
        misses += not (d.lo <= 0.1 <= d.hi)
        null_v, null_b = _pair(60, effect=0.0, seed=200 + k)
        false_alarms += paired_difference(null_v, null_b, n_resamples=2000, seed=k).p < 0.05
    assert misses <= 6 and false_alarms <= 6, (misses, false_alarms)


def test_deterministic_for_a_seed():
    variant, baseline = _pair(300, effect=0.05, seed=3)
    a = paired_difference(variant, baseline, seed=7)
    b = paired_difference(variant, baseline, seed=7)
    c = paired_difference(variant, baseline, seed=8)
    assert a == b
    assert a.diff == c.diff and (a.lo, a.hi) != (c.lo, c.hi)


def test_exact_sign_flip_small_samples():
    # 5 positive differences: only the all-plus and all-minus patterns are as extreme: 2/32.
    assert sign_flip_pvalue([1.0, 2.0, 1.5, 0.5, 3.0]) == pytest.approx(2 / 32)
    assert sign_flip_pvalue([0.0, 0.0, 0.0]) == 1.0
    d = paired_difference([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    assert (d.diff, d.lo, d.hi, d.p) == (0.0, 0.0, 0.0, 1.0)


def test_binary_rates_and_nan_pairs():
    """A verification rate (0/1 per image): 30 images flip to verified, none back."""
    baseline = np.zeros(200)
    variant = baseline.copy()
    variant[:30] = 1.0
    variant[-1] = np.nan  # an image the judge could not score is dropped from the pairs
    d = paired_difference(variant, baseline)
    assert d.n == 199
    assert d.diff == pytest.approx(30 / 199)
    assert d.lo > 0.08 and d.p < 0.001


def test_combine_seeds_and_spread():
    per_seed = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]])
    np.testing.assert_allclose(combine_seeds(per_seed), [2.0, 3.0, 5.0])
    assert np.isnan(combine_seeds([[np.nan], [np.nan]])[0])
    spread = seed_spread(per_seed)  # seed means 1.5 and 4.0
    assert spread.n == 2 and spread.mean == pytest.approx(2.75)
    assert spread.lo < 1.5 and spread.hi > 4.0
    assert math.isnan(seed_spread(per_seed[:1]).half)  # one seed says nothing about seeds
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0])


def test_paired_text_formats_a_difference_in_its_metric_format():
    from facegan.core.report import paired_text

    assert paired_text(1.1354, 1.1012, 1.1721, "{:.2f}") == "+1.14 [+1.10, +1.17]"
    assert paired_text(-0.00331, -0.0040, -0.0026, "{:.4f}") == "-0.0033 [-0.0040, -0.0026]"
    # a rate's difference in percentage points, not as a percentage of a percentage
    assert paired_text(0.0444, 0.0196, 0.0702, "{:.1%}") == "+4.4 pp [+2.0, +7.0]"
    assert paired_text(0.5, math.nan, math.nan, "{:.2f}") == "+0.50"
    assert paired_text(math.nan, math.nan, math.nan, "{:.1%}") == "-"


def test_ablate_formats_a_difference_as_eval_does():
    from facegan.metrics.info import MetricInfo
    from facegan.study.report import fmt_diff

    rate = PairedDifference(diff=0.0444, lo=0.0196, hi=0.0702, p=0.0004, n=1125)
    assert fmt_diff(rate, MetricInfo("judge_verified", "verified", 1, percent=True), "\n") == "+4.4 pp\n[+2.0, +7.0]\np<0.001"
    psnr = PairedDifference(diff=0.391, lo=0.12, hi=0.664, p=0.004, n=1125)
    assert fmt_diff(psnr, MetricInfo("psnr", "PSNR (dB)", 2)) == "+0.39 [+0.12, +0.66] p=0.004"


def test_a_metric_prints_the_same_everywhere():
    from facegan.metrics import info as mi
    from facegan.study.run import TABLE_METRICS
    from facegan.tasks.inpaint import InpaintTask
    from facegan.tasks.sr import SRTask

    assert mi.PSNR.fmt == "{:.2f}" and mi.JUDGE_VERIFIED.fmt == "{:.1%}"
    # eval's columns (each task's, identity, judge) and ablate's are the same objects
    assert InpaintTask.metric_columns[0] is SRTask.metric_columns[0] is TABLE_METRICS[0] is mi.PSNR
    assert TABLE_METRICS[-3:] == [mi.ID_COS, *mi.JUDGE]
