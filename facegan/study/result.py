"""What an ablation study found: per-run scores, per-variant estimates, the whole study."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegan.metrics import info as mi
from facegan.metrics.info import MetricInfo
from facegan.metrics.stats import Estimate, PairedDifference
from facegan.study.spec import Study

#: The per-image keys of the independent judge's columns.
JUDGE_KEYS = tuple(m.key for m in mi.JUDGE)


@dataclass
class RunScores:
    """One trained and evaluated run: its per-image scores."""

    variant: str
    seed: int
    run_dir: Path
    step: int
    files: list[str]
    values: dict[str, np.ndarray]
    per_image_csv: Path


@dataclass
class MetricResult:
    """One metric of one variant: over images, over seeds, and against the baseline."""

    estimate: Estimate
    seeds: Estimate
    #: None for the baseline itself.
    diff: PairedDifference | None


@dataclass
class VariantResult:
    name: str
    description: str
    overrides: list[str]
    runs: list[RunScores]
    metrics: dict[str, MetricResult]


@dataclass
class StudyResult:
    """Everything the report needs."""

    study: Study
    out: Path
    quick: bool
    seeds: int
    task: str
    data: str
    split: str
    mask: str | None
    n_images: int
    steps: dict[str, int]
    identity_net: str
    judge: str | None
    #: Why there is no judge column (the judge is not installed, or --no-judge).
    judge_note: str | None
    variants: list[VariantResult]
    #: The table's metrics (judge columns included even without a judge, to say why).
    metrics: list[MetricInfo]
    #: Other per-image metrics every run has (results.csv only), e.g. hole_l1.
    extra_metrics: list[str]

    @property
    def baseline(self) -> str:
        return self.study.spec.baseline
