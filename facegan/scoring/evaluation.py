"""What one ``facegan eval`` scored: the settings, every per-image value and the estimates.

:func:`facegan.scoring.scorer.score` builds an :class:`Evaluation`; everything written or
printed afterwards reads it: the JSON summary (:mod:`facegan.scoring.summary`), the CSV, JSON and
grid files (:mod:`facegan.scoring.outputs`) and the tables (:mod:`facegan.scoring.console`).
``ablate`` compares the exact per-image values of several evaluations image by image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facegan.metrics.info import MetricInfo
from facegan.metrics.stats import Estimate, PairedDifference
from facegan.tasks.base import EvalSettings, Reference


@dataclass(frozen=True)
class EvalSetup:
    """How an evaluation was made: the checkpoint, the faces, the inputs and the scoring networks."""

    task: str
    """The task's name (``inpaint``, ``sr``)."""
    task_label: str
    """The task as titles show it (``inpaint``, ``sr x4``)."""
    run_name: str
    """The recipe's name, the model row's label."""
    checkpoint: Path
    step: int | None
    mirror: bool
    """Whether the generator ran as a mirror self-ensemble."""
    dataset: Path
    split: str
    n_images: int
    settings: EvalSettings
    """The task's fixed inputs (mask and seed, or scale)."""
    identity_net: str
    """The network that scored ``id_cos`` (:mod:`facegan.scoring.identity_rule`)."""
    judge: str | None
    """The independent judge that scored ``judge_cos`` / ``judge_verified``, if any."""
    references: tuple[Reference, ...]
    """The no-model references scored beside the model (none for ``ablate``)."""
    columns: tuple[MetricInfo, ...]
    """The metrics of the tables, in order."""
    skipped_references: tuple[Reference, ...] = ()
    """Peers left out because their optional extra is not installed."""
    fid_weights: Path | None = None
    """The Inception weights file ``fid`` was computed with (``--fid-weights``), if any."""


@dataclass(frozen=True)
class CacheUse:
    """How many batches' reference rows came from the cache (:mod:`facegan.scoring.reference_cache`)."""

    folder: Path
    reused: int
    scored: int
    write_error: str | None = None
    """Why the cache could not be written (it only saves time), or None."""


@dataclass
class Evaluation:
    """What :func:`facegan.scoring.evaluate.evaluate` scored, and its JSON summary."""

    setup: EvalSetup
    files: list[str]
    identities: list[str]
    per_image: dict[str, np.ndarray]
    """The model's per-image metrics (float64, one value per scored image)."""
    references: dict[str, dict[str, np.ndarray]]
    """Each no-model reference's per-image metrics, by reference key."""
    estimates: dict[str, Estimate]
    """The model's mean and 95% Student-t interval over images, per metric."""
    reference_estimates: dict[str, dict[str, Estimate]]
    """Each reference's estimates, by reference key."""
    paired: dict[str, dict[str, PairedDifference]]
    """Per reference key and metric: the paired difference model − reference over the same images."""
    grid: list[tuple[str, np.ndarray]] = field(default_factory=list)
    """The first faces' panels (title, uint8 images) for the grid picture."""
    cache: CacheUse | None = None
    """The reference cache's use, when it was on."""
    per_image_csv: Path | None = None
    """Where the per-image CSV was written (set by ``evaluate``)."""
    summary: dict = field(default_factory=dict)
    """The JSON summary (:func:`facegan.scoring.summary.summary_of`), set by ``evaluate``."""
