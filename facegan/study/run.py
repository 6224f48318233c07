"""`facegan ablate`: does a change (e.g. the identity loss) really help? Train, score, compare.

For every variant of a spec (:mod:`facegan.study.spec`) and every seed, the runner

1. trains ``<out>/<variant>/seed<k>`` with :func:`facegan.training.train.train`, unless that run's
   ``checkpoints/last.pt`` already stands at its final step (an unfinished run is resumed, so
   an interrupted study picks up where it stopped);
2. scores it with :func:`facegan.scoring.evaluate.evaluate` on the same split, the same fixed masks
   and the same networks for every run: the identity cosine by the baseline's scoring identity
   network (:mod:`facegan.scoring.identity_rule`, the rule ``eval`` applies) and, unless turned
   off, by an independent judge (:mod:`facegan.scoring.judge`) that no variant trains against
   (a finished evaluation of the same checkpoint and settings is reused);
3. takes the per-image scores of every run (exact values, as :func:`facegan.scoring.evaluate.evaluate`
   returns them; a reused evaluation keeps them in ``eval/ablate.npz``), averages each image
   over seeds, and compares every variant with the baseline image by image (:mod:`facegan.metrics.stats`).

The results (a rich table, ``results.md``, ``results.csv``, ``results.png``) are written by
:mod:`facegan.study.report`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from facegan.core.errors import FaceganError
from facegan.metrics import info as mi
from facegan.metrics.stats import combine_seeds, mean_ci, paired_difference, seed_spread
from facegan.scoring.identity_rule import identity_net_for
from facegan.study.result import JUDGE_KEYS, MetricResult, RunScores, StudyResult, VariantResult
from facegan.study.spec import Study, load_study, run_overrides, run_recipe

#: The metrics of the table, in order; those a study's evaluation does not produce are left
#: out (PSNR-Y/SSIM-Y exist for super-resolution only, LMD with the dlib judge only). Detail and
#: LMD are there because a GAN term trades PSNR for them: a study of a GAN recipe must show both.
TABLE_METRICS = [mi.PSNR, mi.SSIM, mi.PSNR_Y, mi.SSIM_Y, mi.DETAIL, mi.LMD, mi.ID_COS, *mi.JUDGE]


def default_out(study: Study, quick: bool) -> Path:
    """``runs/ablate_<spec stem>`` (``..._quick`` for --quick, whose runs are other recipes)."""
    stem = study.name if study.name.startswith("ablate") else f"ablate_{study.name}"
    return Path("runs") / (stem + ("_quick" if quick else ""))


def run_study(
    spec: str | Path,
    out: str | Path | None = None,
    seeds: int | None = None,
    quick: bool = False,
    sets: list[str] | tuple = (),
    judge: str | None = None,
    no_judge: bool = False,
    device: str = "auto",
    max_images: int | None = None,
    console=None,
    n_resamples: int | None = None,
) -> StudyResult:
    """Train, evaluate and compare every variant x seed of the spec at ``spec``.

    ``seeds`` overrides the spec's; ``sets`` are ``--set`` overrides for every run (after the
    variant's and the quick ones); ``judge`` replaces the spec's eval.judge and
    ``no_judge`` turns the judge off. Writes the results into ``out`` (default
    :func:`default_out`) and returns them.
    """
    from rich.markup import escape

    from facegan.metrics.stats import N_RESAMPLES
    from facegan.study.report import write_results

    study = load_study(spec)
    n_seeds = seeds if seeds is not None else study.spec.seeds
    if n_seeds < 1:
        raise FaceganError(f"--seeds must be at least 1, got {n_seeds}")
    out_dir = Path(out) if out is not None else default_out(study, quick)
    extra = [*sets, *([f"train.device={device}"] if device != "auto" else [])]
    names = [v.name for v in study.spec.variants]
    recipes = {(v, k): run_recipe(study, v, k, quick, extra) for v in names for k in range(n_seeds)}
    base_recipe = recipes[(study.spec.baseline, 0)]
    if len({r.task for r in recipes.values()}) > 1:
        raise FaceganError(f"{study.path}: the variants must all be of one task")
    id_net = identity_net_for(base_recipe).name  # the baseline's, for every run (the rule eval applies)
    judge_name, judge_note = _pick_judge(study, recipes, judge, no_judge)
    if judge_note is not None:
        _say(console, f"[yellow]note:[/] {escape(judge_note)}; the judge columns stay empty")
    ev = study.spec.eval
    split = ev.split or base_recipe.eval.split
    mask = ev.mask  # the same fixed holes for every run (None: the recipe's eval.mask)
    limit = max_images or ev.max_images

    runs: dict[str, list[RunScores]] = {v: [] for v in names}
    steps: dict[str, int] = {}
    for (variant, k), recipe in recipes.items():
        run_dir = out_dir / variant / f"seed{k}"
        _say(console, f"[bold]{variant}[/] seed {k} ({escape(', '.join(study.variant(variant).set) or 'base recipe')})")
        steps[variant] = _train(recipe, run_dir, console)
        runs[variant].append(_evaluate(variant, k, run_dir, split, mask, id_net, judge_name, device, limit, console))

    variants, common = summarize(study, runs, n_resamples or N_RESAMPLES)
    table_keys = {m.key for m in TABLE_METRICS}
    result = StudyResult(
        study=study, out=out_dir, quick=quick, seeds=n_seeds, task=base_recipe.task, data=base_recipe.data.path,
        split=split, mask=mask, n_images=len(runs[study.spec.baseline][0].files), steps=steps, identity_net=id_net,
        judge=judge_name, judge_note=judge_note, variants=variants,
        metrics=[m for m in TABLE_METRICS if m.key in common or m.key in JUDGE_KEYS],
        extra_metrics=[k for k in common if k not in table_keys],
    )
    written = write_results(result)
    if console is not None:
        from facegan.study.report import results_table

        console.print(results_table(result))
        console.print("wrote " + ", ".join(str(p) for p in written))
    return result


def _pick_judge(study: Study, recipes: dict, judge: str | None, no_judge: bool) -> tuple[str | None, str | None]:
    """The judge every run is scored by, or (None, why not). Refuses a network that any
    variant trains against; a judge whose packages are missing becomes a note, not an error."""
    from facegan.scoring.judge import JudgeUnavailable, load_judge

    if no_judge:
        return None, "no judge (--no-judge)"
    name = judge or study.spec.eval.judge
    if name is None:
        return None, f"no judge ({study.path} sets eval.judge: null)"
    trained = {r.loss.identity_net for r in recipes.values() if r.loss.identity > 0}
    if name in trained:
        raise FaceganError(
            f"judge {name!r} is the identity network some variants train with; a loss network scored "
            f"by itself can be gamed: pick another with --judge-net (e.g. dlib)"
        )
    try:
        load_judge(name)  # fail now, not after hours of training
    except JudgeUnavailable as err:
        return None, f"judge {name} unavailable: {err}"
    return name, None


def _say(console, text: str) -> None:
    if console is not None:
        console.print(text, soft_wrap=True)


def _train(recipe, run_dir: Path, console) -> int:
    """Train (or resume, or skip) one run; returns its final step."""
    from facegan.checkpoints.checkpoint import read_checkpoint
    from facegan.training.run_state import check_resume_compatible
    from facegan.training.train import train

    last = run_dir / "checkpoints" / "last.pt"
    if last.is_file():
        try:
            ckpt = read_checkpoint(last, mmap=True)
            stored, step, total = ckpt["recipe"], int(ckpt["step"]), int(ckpt["total_steps"])
        except (FaceganError, KeyError, TypeError, ValueError):
            raise FaceganError(f"{last} is not a readable checkpoint; delete {run_dir} to train that run again") from None
        try:
            check_resume_compatible(stored, recipe)
        except FaceganError as err:
            raise FaceganError(f"{run_dir} holds a run of another recipe ({err}); delete it or pick another --out") from None
        same_budget = all(stored["train"].get(k) == getattr(recipe.train, k) for k in ("steps", "epochs"))
        if same_budget and step >= total:
            _say(console, f"  [dim]finished at step {step}: not trained again[/]")
            return step
        _say(console, f"  resuming from step {step}")
        train(recipe, run_dir, resume=True, console=console)
    else:
        train(recipe, run_dir, console=console)
    return int(read_checkpoint(last, mmap=True)["step"])


def _evaluate(variant: str, seed: int, run_dir: Path, split: str, mask: str | None, id_net: str,
              judge: str | None, device: str, max_images: int | None, console) -> RunScores:
    """Score one run (or reuse its exact per-image scores for the same checkpoint step and settings)."""
    from facegan.checkpoints.checkpoint import read_checkpoint
    from facegan.core.atomic import atomic_write_bytes
    from facegan.scoring.evaluate import evaluate

    step = int(read_checkpoint(run_dir / "checkpoints" / "last.pt", mmap=True)["step"])
    key = {"step": step, "split": split, "mask": mask, "identity_net": id_net, "judge": judge, "max_images": max_images}
    marker, arrays = run_dir / "eval" / "ablate.json", run_dir / "eval" / "ablate.npz"
    stored = _stored_scores(marker, arrays, key)
    if stored is not None:
        _say(console, "  [dim]scores of this checkpoint found: not evaluated again[/]")
        csv_path, files, values = stored
    else:
        options = {"mask": mask} if mask is not None else {}
        result = evaluate(run_dir, split=split, identity_net=id_net, device=device, max_images=max_images,
                          out_dir=run_dir / "eval", judge=judge, references=False, **options)
        csv_path, files, values = Path(result.summary["per_image_csv"]), result.files, result.per_image
        buf = io.BytesIO()
        np.savez(buf, files=np.array(files), **{f"metric_{k}": v for k, v in values.items()})
        atomic_write_bytes(arrays, buf.getvalue())
        atomic_write_bytes(marker, json.dumps({"key": key, "per_image_csv": str(csv_path)}, indent=2).encode())
    return RunScores(variant, seed, run_dir, step, files, values, csv_path)


def _stored_scores(marker: Path, arrays: Path, key: dict) -> tuple[Path, list[str], dict[str, np.ndarray]] | None:
    """The per-image scores kept by an earlier evaluation with the same ``key``, else None."""
    try:
        stored = json.loads(marker.read_text())
        if stored.get("key") != key:
            return None
        with np.load(arrays, allow_pickle=False) as npz:
            files = [str(f) for f in npz["files"]]
            values = {k[len("metric_"):]: npz[k].astype(np.float64) for k in npz.files if k.startswith("metric_")}
        return Path(stored["per_image_csv"]), files, values
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def summarize(study: Study, runs: dict[str, list[RunScores]], n_resamples: int) -> tuple[list[VariantResult], list[str]]:
    """Per-variant estimates and paired differences against the baseline (see facegan.metrics.stats),
    and the metrics every run has.

    All runs must have scored the same images in the same order. Each image's value is first
    averaged over the variant's seeds; the baseline's seed-averaged values are the pairs.
    """
    all_runs = [r for rs in runs.values() for r in rs]
    first = all_runs[0]
    for r in all_runs[1:]:
        if r.files != first.files:
            raise FaceganError(
                f"{r.run_dir} and {first.run_dir} were scored on different images; re-run the study "
                f"with the same eval split and max_images"
            )
    common = [k for k in first.values if all(k in r.values for r in all_runs)]
    per_image = {v: {k: np.stack([r.values[k] for r in rs]) for k in common} for v, rs in runs.items()}
    baseline = study.spec.baseline
    base_values = {k: combine_seeds(m) for k, m in per_image[baseline].items()}
    variants = []
    for spec_variant in study.spec.variants:
        name = spec_variant.name
        metrics = {}
        for k, matrix in per_image[name].items():
            combined = combine_seeds(matrix)
            diff = None if name == baseline else paired_difference(combined, base_values[k], n_resamples=n_resamples)
            metrics[k] = MetricResult(mean_ci(combined), seed_spread(matrix), diff)
        variants.append(VariantResult(name, spec_variant.description, list(spec_variant.set), runs[name], metrics))
    return variants, common


def planned_runs(spec: str | Path, out: str | Path | None = None, seeds: int | None = None, quick: bool = False,
                 sets: list[str] | tuple = ()) -> list[tuple[str, int, Path, list[str]]]:
    """(variant, seed, run folder, overrides) of every run a study would train (``--dry-run``);
    every run's recipe is validated."""
    study = load_study(spec)
    out_dir = Path(out) if out is not None else default_out(study, quick)
    n_seeds = seeds if seeds is not None else study.spec.seeds
    plan = []
    for v in study.spec.variants:
        for k in range(n_seeds):
            run_recipe(study, v.name, k, quick, list(sets))
            plan.append((v.name, k, out_dir / v.name / f"seed{k}", run_overrides(study, v.name, k, quick, list(sets))))
    return plan
