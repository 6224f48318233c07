"""The JSON summary of an evaluation: the one shape ``facegan eval`` writes and bundled cards keep.

Top level: the model's ``metrics`` (means) and ``ci95`` (half-widths of the 95% Student-t
intervals), ``n_images``, ``task``, ``checkpoint``, ``step``, ``mirror_ensemble``, ``dataset``,
``split``, the task's settings (``mask`` + ``mask_seed``, or ``scale``), ``identity_net``,
``judge``, ``per_image_csv`` and ``conventions``; ``reference_cache`` when the cache was on;
``fid_weights`` (the Inception weights file) when ``fid`` was computed.
With references, each appears once under ``references`` (key -> ``name``, ``metrics``,
``ci95``), and ``paired`` holds, per reference key and metric, the paired difference model −
reference (``diff``, ``lo``, ``hi``, ``p``, ``n``).
"""

from __future__ import annotations

from dataclasses import asdict

from facegan.metrics.quality import METRIC_CONVENTIONS
from facegan.metrics.stats import Estimate
from facegan.scoring.evaluation import Evaluation


def summary_of(evaluation: Evaluation) -> dict:
    """The JSON summary of ``evaluation`` (module docstring)."""
    setup, csv_path = evaluation.setup, evaluation.per_image_csv
    summary = {
        "metrics": _means(evaluation.estimates),
        "ci95": _halves(evaluation.estimates),
        "n_images": setup.n_images,
        "task": setup.task,
        "checkpoint": str(setup.checkpoint),
        "step": setup.step,
        "mirror_ensemble": setup.mirror,
        "dataset": str(setup.dataset),
        "split": setup.split,
        **setup.settings.summary,
        "identity_net": setup.identity_net,
        "judge": setup.judge,
        "per_image_csv": str(csv_path) if csv_path is not None else None,
        "conventions": METRIC_CONVENTIONS,
    }
    if setup.fid_weights is not None:
        summary["fid_weights"] = str(setup.fid_weights)
    cache = evaluation.cache
    if cache is not None:
        summary["reference_cache"] = {"folder": str(cache.folder), "batches_reused": cache.reused,
                                      "batches_scored": cache.scored}
    if setup.references:
        summary["references"] = {
            r.key: {"name": r.name, "metrics": _means(evaluation.reference_estimates[r.key]),
                    "ci95": _halves(evaluation.reference_estimates[r.key])}
            for r in setup.references
        }
        summary["paired"] = {r.key: {k: asdict(d) for k, d in evaluation.paired[r.key].items()}
                             for r in setup.references}
    if setup.skipped_references:
        summary["references_skipped"] = {r.key: f"needs {r.requires}: pip install 'facegan[{r.extra}]'"
                                          for r in setup.skipped_references}
    return summary


def _means(estimates: dict[str, Estimate]) -> dict[str, float]:
    return {k: e.mean for k, e in estimates.items()}


def _halves(estimates: dict[str, Estimate]) -> dict[str, float]:
    return {k: e.half for k, e in estimates.items()}
