"""Scoring for ``facegan eval`` (docs/design.md, "Metrics"): run a checkpoint's EMA generator and
the task's no-model references over the split, and score every image.

Each batch's outputs are quantised to uint8 and scored per image by the task
(:meth:`facegan.tasks.base.Task.score`), plus the identity cosine by the scoring identity
network (:mod:`facegan.scoring.identity_rule`) and, when asked, an independent judge
(:mod:`facegan.scoring.judge`); with FID weights, every row's and the ground truths' Inception
features are kept too (:mod:`facegan.models.fid`). The references are scored by the same code;
their rows are reused from :mod:`facegan.scoring.reference_cache` when the same batch was scored
before. Then each row gets its mean and 95% Student-t interval over images
(:func:`facegan.metrics.stats.mean_ci`, the interval ``ablate`` prints) and the model is paired
with each reference image by image (:func:`facegan.metrics.stats.paired_difference`); the
split-level Fréchet distances (``fd_dlib``, ``fid``) get bootstrap intervals instead.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan.metrics import info as metric_info
from facegan.metrics import quality as metrics
from facegan.metrics.stats import mean_ci, paired_difference
from facegan.scoring.console import progress
from facegan.scoring.evaluation import CacheUse, EvalSetup, Evaluation
from facegan.scoring.identity_rule import IdentityChoice, identity_net_for
from facegan.scoring.inputs import EvalInputs, eval_batches
from facegan.scoring.reference_cache import ReferenceCache, scorer_digest
from facegan.tasks.base import PeerModels

#: Faces shown in the grid picture (from the first batch).
GRID_FACES = 8

#: Per row (``model`` or a reference key), per metric: one array per batch.
Rows = dict[str, dict[str, list[np.ndarray]]]


@dataclass
class Scorers:
    """What turns an evaluation batch into per-image metrics."""

    task: Any
    generator: torch.nn.Module
    identity: IdentityChoice
    id_net: Any
    judge: Any | None
    """The judge (:class:`facegan.scoring.judge.Judge`), or None."""
    references: tuple
    """The task's :class:`facegan.tasks.base.Reference` rows scored beside the model."""
    cache: ReferenceCache | None
    peers: PeerModels | None = None
    """Model files of the opt-in peers asked for."""
    landmarks: tuple[int, ...] | None = None
    """The 68-point landmarks ``lmd`` is taken over, when the judge scores landmarks (dlib)."""
    fid: Any | None = None
    """FID's Inception v3 (:func:`facegan.models.fid.load_fid_inception`), or None: no ``fid``."""

    @property
    def reference_keys(self) -> tuple[str, ...]:
        return tuple(r.key for r in self.references)


def score(inputs: EvalInputs, identity_net: str | None = None, device: str = "auto", judge: str | None = None,
          references: bool = True, mirror: bool | None = None, reference_cache: bool = True,
          console=None, peers: PeerModels | None = None, fid_weights: str | Path | None = None) -> Evaluation:
    """Score ``inputs``' checkpoint and (unless ``references`` is False) the task's references.

    ``identity_net`` asks for a scoring identity network (:func:`identity_net_for`); ``judge``
    names an independent judge (None: no judge); ``mirror`` True/False overrides the recipe's
    ``model.mirror_ensemble``; ``reference_cache`` False neither reads nor writes cached
    reference rows; ``peers`` names the opt-in peers' model files. ``console`` shows a progress bar.
    ``fid_weights`` (pytorch-fid's Inception weights file) adds ``fid`` to every row. Writes nothing.
    """
    from facegan.core.device import pick_device

    dev = pick_device(device)
    scorers = load_scorers(inputs, identity_net_for(inputs.recipe, identity_net), dev, judge, references,
                           mirror, reference_cache, peers, fid_weights)
    rows, grid = _score_split(inputs, scorers, dev, console)
    return _evaluation(inputs, scorers, rows, grid)


def load_scorers(inputs: EvalInputs, identity: IdentityChoice, device: torch.device, judge: str | None,
                 references: bool, mirror: bool | None, reference_cache: bool,
                 peers: PeerModels | None = None, fid_weights: str | Path | None = None) -> Scorers:
    """The generator, the identity network, the judge, FID's Inception (with ``fid_weights``) and
    the reference cache, on ``device``."""
    from facegan.models.identity import load_identity_net

    recipe, task = inputs.recipe, inputs.task
    id_net = load_identity_net(identity.name, identity.weights, device=device)
    judge_net = None
    if judge is not None:  # an independent network that training never saw
        from facegan.scoring.judge import load_judge

        trained = recipe.loss.identity_net if recipe.loss.identity > 0 else None
        judge_net = load_judge(judge, training_net=trained, device=device)
    fid_net = None
    if fid_weights is not None:
        from facegan.models.fid import load_fid_inception

        fid_net = load_fid_inception(fid_weights, device=device)
    generator = inputs.ckpt.build_generator(device, mirror)
    refs = task.available_references(peers) if references else ()
    cache = None
    if refs and reference_cache:
        keys = tuple(r.key for r in refs)
        cache = ReferenceCache(scorer_digest(recipe.task, keys, device, id_net, judge_net, peers, fid_net))
    landmarks = task.lmd_landmarks(inputs.settings) if hasattr(judge_net, "landmarks") else None
    return Scorers(task, generator, identity, id_net, judge_net, refs, cache, peers, landmarks, fid_net)


def _score_split(inputs: EvalInputs, scorers: Scorers, device: torch.device,
                 console) -> tuple[Rows, list[tuple[str, np.ndarray]]]:
    """Every batch's per-image metrics by row, and the grid panels of the first batch."""
    rows: Rows = {"model": {}, **{key: {} for key in scorers.reference_keys}}
    grid: list[tuple[str, np.ndarray]] = []
    bar = progress(console, inputs.n, f"eval {inputs.split} / {inputs.settings.label}")
    with bar if bar is not None else contextlib.nullcontext():
        bar_task = bar.add_task("eval", total=inputs.n) if bar is not None else None
        for start, stop, batch in eval_batches(inputs, device):
            with torch.no_grad():
                raw, result = scorers.task.run(scorers.generator, batch)
                scored = score_batch(scorers, batch, result)
            for name in rows:
                for key, value in scored[name].items():
                    rows[name].setdefault(key, []).append(value)
            if not grid:
                k = min(GRID_FACES, stop - start)
                grid = [(v.title, metrics.to_uint8(v.images[:k])) for v in scorers.task.visuals(batch, raw, result)]
            if bar is not None:
                bar.update(bar_task, completed=stop)
    return rows, grid


def score_batch(scorers: Scorers, batch: Any, result: torch.Tensor) -> dict[str, dict[str, np.ndarray]]:
    """Per-image metrics of one batch: the model's ``result``, then each reference (cached or
    computed, then cached), by row."""
    keys, cache = scorers.reference_keys, scorers.cache
    outputs = {"model": result}
    cached = cache_file = None
    if cache is not None:
        cache_file = cache.file_for(batch)
        cached = cache.get(cache_file, keys, len(result))
    if keys and cached is None:
        outputs.update(scorers.task.reference_outputs(batch, keys, scorers.peers))
    target_emb = scorers.id_net(batch.target)
    gt_u8 = metrics.to_uint8(batch.target)
    scored = {}
    for name, images in outputs.items():
        images_u8 = metrics.to_uint8(images)
        per = scorers.task.score(images_u8, gt_u8, batch)
        per["id_cos"] = np.asarray(metrics.identity_cosine(scorers.id_net(images), target_emb), dtype=np.float64)
        if scorers.judge is not None:
            per.update(scorers.judge.score(images, batch.target, scorers.landmarks))
        if scorers.fid is not None:  # on the uint8 images, as FID is computed on saved pictures
            per[metric_info.FID_FEATURE_KEYS[0]] = _fid_features(scorers.fid, images_u8)
        scored[name] = per
    if scorers.fid is not None:
        scored["model"][metric_info.FID_FEATURE_KEYS[1]] = _fid_features(scorers.fid, gt_u8)
    if cache is not None and cached is None:
        cache.put(cache_file, {k: scored[k] for k in keys})
    scored.update(cached or {})
    return scored


def _evaluation(inputs: EvalInputs, scorers: Scorers, rows: Rows, grid: list[tuple[str, np.ndarray]]) -> Evaluation:
    """The typed :class:`Evaluation`: per-image values, estimates, paired differences and setup."""
    from facegan.models.mirror import MirrorEnsemble

    per_image = {name: {k: np.concatenate(v) for k, v in values.items()} for name, values in rows.items()}
    descriptors = {name: tuple(values.pop(k) for k in metric_info.DESCRIPTOR_KEYS)
                   for name, values in per_image.items() if metric_info.DESCRIPTOR_KEYS[0] in values}
    fid_key, fid_target_key = metric_info.FID_FEATURE_KEYS
    fid_target = per_image["model"].pop(fid_target_key, None)
    fid_features = {name: values.pop(fid_key) for name, values in per_image.items() if fid_key in values}
    model = per_image.pop("model")
    task, ckpt, judge = inputs.task, inputs.ckpt, scorers.judge
    setup = EvalSetup(
        task=inputs.recipe.task, task_label=task.label, run_name=inputs.recipe.name, checkpoint=Path(ckpt.path),
        step=ckpt.step, mirror=isinstance(scorers.generator, MirrorEnsemble), dataset=inputs.data_path,
        split=inputs.split, n_images=inputs.n, settings=inputs.settings, identity_net=scorers.identity.name,
        judge=judge.name if judge is not None else None, references=scorers.references,
        skipped_references=tuple(r for r in task.references if r not in scorers.references
                                 and r.asked(scorers.peers)) if scorers.references else (),
        columns=(*task.metric_columns, metric_info.ID_COS, *(metric_info.JUDGE if judge is not None else ()),
                 *((metric_info.LMD, metric_info.FD_DLIB) if descriptors else ()),
                 *((metric_info.FID,) if fid_target is not None else ())),
        fid_weights=getattr(scorers.fid, "weights_file", None),
    )
    cache = scorers.cache
    estimates = {"model": _estimates(model), **{key: _estimates(values) for key, values in per_image.items()}}
    paired = {key: _paired(model, values) for key, values in per_image.items()}
    if descriptors:
        _add_frechet("fd_dlib", {name: desc for name, (desc, _) in descriptors.items()}, descriptors["model"][1],
                     estimates, paired)
    if fid_target is not None:
        _add_frechet("fid", fid_features, fid_target, estimates, paired)
    return Evaluation(
        setup=setup, files=list(inputs.faces.files[:inputs.n]), identities=list(inputs.faces.identities[:inputs.n]),
        per_image=model, references=per_image,
        estimates=estimates.pop("model"),
        reference_estimates=estimates,
        paired=paired,
        grid=grid,
        cache=CacheUse(cache.folder, cache.hits, cache.misses, cache.write_error) if cache is not None else None,
    )


def _estimates(values: dict[str, np.ndarray]) -> dict:
    """Per metric, the mean and 95% Student-t interval over images."""
    return {k: mean_ci(v) for k, v in values.items()}


def _paired(model: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict:
    """Per metric, the paired difference model − reference over the same images."""
    return {k: paired_difference(v, reference[k]) for k, v in model.items() if k in reference}


def _add_frechet(key: str, features: dict[str, np.ndarray], target: np.ndarray, estimates: dict[str, dict],
                 paired: dict[str, dict]) -> None:
    """``key`` (``fd_dlib``, ``fid``) of every row: the Fréchet distance of its ``features`` to
    the ground truths' ``target`` features, its bootstrap interval as the estimate's, and the
    model's paired difference to each reference (bootstrapped on the same resampled images)."""
    from facegan.metrics.realism import frechet_ci
    from facegan.metrics.stats import Estimate, PairedDifference

    out = features["model"]
    for name, feats in features.items():
        value, lo, hi = frechet_ci(feats, target)
        estimates[name][key] = Estimate(value, lo, hi, len(feats))
        if name != "model":
            diff, lo, hi = frechet_ci(out, target, other=feats)
            paired[name][key] = PairedDifference(diff, lo, hi, float("nan"), len(feats))


def _fid_features(net, images_u8: np.ndarray) -> np.ndarray:
    """``(B, 2048)`` Inception pool3 features of uint8 ``(B, H, W, 3)`` images."""
    from facegan.models.fid import fid_features

    return fid_features(net, images_u8)
