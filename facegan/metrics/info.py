"""How each metric facegan reports is named and printed: one description per metric.

eval's tables, the training sample line, ablate's tables and plots and the model cards all
take their headers and number formats from here, so a metric reads the same everywhere (a rate
in percent, its differences in percentage points: :func:`facegan.core.report.paired_text`). What
the metrics compute lives in :mod:`facegan.metrics.quality`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """How one per-image metric is labelled and printed."""

    key: str
    header: str
    decimals: int
    #: A 0/1 rate shown in percent (differences in percentage points).
    percent: bool = False

    @property
    def fmt(self) -> str:
        """Its format string: ``{:.2f}``, or ``{:.1%}`` for a rate."""
        return f"{{:.{self.decimals}{'%' if self.percent else 'f'}}}"


PSNR = MetricInfo("psnr", "PSNR (dB)", 2)
SSIM = MetricInfo("ssim", "SSIM", 4)
PSNR_Y = MetricInfo("psnr_y", "PSNR-Y (dB)", 2)
SSIM_Y = MetricInfo("ssim_y", "SSIM-Y", 4)
HOLE_L1 = MetricInfo("hole_l1", "hole L1 ×100", 2)
HOLE_PSNR = MetricInfo("hole_psnr", "hole PSNR (dB)", 2)
#: Identity cosine by the training's (or eval's --identity-net) network.
ID_COS = MetricInfo("id_cos", "identity cos", 4)
#: Identity scored by an independent judge (``--judge``): its cosine, and the share it verifies.
JUDGE_COS = MetricInfo("judge_cos", "judge cos", 4)
JUDGE_VERIFIED = MetricInfo("judge_verified", "judge verified", 1, percent=True)
JUDGE = (JUDGE_COS, JUDGE_VERIFIED)
#: Realism (:mod:`facegan.metrics.realism`): the output's gradient energy over the truth's (1 =
#: as sharp), and the landmark distance in pixels (with the dlib judge).
DETAIL = MetricInfo("detail", "detail", 2)
LMD = MetricInfo("lmd", "LMD (px)", 2)
#: The Fréchet distance of the outputs' dlib descriptors to the ground truths', over the split
#: (lower is closer; one value per row, its interval bootstrapped over images).
FD_DLIB = MetricInfo("fd_dlib", "FD dlib", 4)
#: The per-image arrays the dlib judge adds for ``fd_dlib`` (not metrics; never in a CSV).
DESCRIPTOR_KEYS = ("judge_desc", "judge_desc_target")
#: FID (with ``--fid-weights``): the same distance on the 2048-d pool3 features of FID's Inception
#: v3 (:mod:`facegan.models.fid`), over the split; lower is closer. Unreliable under ~1,000 images
#: (biased upwards at small N: compare rows only at the same N).
FID = MetricInfo("fid", "FID", 2)
#: The per-image Inception features eval keeps for ``fid``: each row's, and (model row only) the
#: ground truths' (not metrics; never in a CSV).
FID_FEATURE_KEYS = ("fid_features", "fid_features_target")
