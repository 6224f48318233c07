"""`facegan eval`: score a checkpoint's EMA generator on fixed inputs (docs/design.md, "Metrics").

The checkpoint's task (:class:`facegan.engines.task.Task`) makes the inputs: deterministic per
image (an inpainting hole depends only on mask type, image index and seed; super-resolution
uses plain bicubic reductions), so two runs are scored on the same inputs and can be compared
image by image. Images are quantised to uint8 before scoring; each metric is computed per
image, then averaged, with a 95% Student-t confidence interval over images
(:func:`facegan.stats.mean_ci`, the same interval ``ablate`` prints).

Beside the model, the task's no-model references (inpainting: the hole left grey and
scikit-image's biharmonic fill; super-resolution: bicubic upscaling) are scored by the same
code, with the same intervals. Outputs: a rich table, a per-image CSV, a JSON summary and a
grid of the first faces, in ``<run>/eval/``; :func:`evaluate` also returns the per-image
values (:class:`Evaluation`), which ``ablate`` compares image by image.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan import metric_info
from facegan.errors import FaceganError

#: How the paired table's cells read.
PAIRED_CAPTION = ("Mean of the per-image differences [95% bootstrap CI over images]; an interval that "
                  "excludes 0 is a difference beyond noise (two-sided sign-flip p in the JSON's \"paired\").")


@dataclass
class Evaluation:
    """What :func:`evaluate` scored: the JSON summary and every per-image value."""

    summary: dict
    """The summary written to ``<stem>.json``."""
    files: list[str]
    identities: list[str]
    per_image: dict[str, np.ndarray]
    """The model's per-image metrics (float64, one value per scored image)."""
    references: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    """Each no-model reference's per-image metrics, by reference key."""


@dataclass
class EvalInputs:
    """What ``eval`` feeds a checkpoint: its task, the faces it is scored on and the fixed settings."""

    ckpt: dict
    recipe: Any
    """The checkpoint's validated recipe."""
    task: Any
    """The recipe's :class:`facegan.engines.task.Task`."""
    data_path: Path
    split: str
    faces: Any
    """The split (:class:`facegan.data.packed.Split`); the first ``n`` faces are scored."""
    n: int
    settings: Any
    """The task's :class:`facegan.engines.task.EvalSettings` for these options."""


def eval_inputs(checkpoint: str | Path, data: str | Path | None = None, split: str | None = None,
                max_images: int | None = None, **options) -> EvalInputs:
    """Load a checkpoint (file, run folder or bundled name) and open the faces it is scored on:
    the recipe's dataset and eval split unless given, at most ``max_images`` (or the recipe's
    ``eval.max_images``). Refuses a dataset of another face size and an empty split."""
    from facegan.data.packed import PackedDataset
    from facegan.engines.checkpoint import load_checkpoint
    from facegan.engines.task import TaskOptions
    from facegan.engines.tasks import make_task
    from facegan.recipe import validate_recipe

    if max_images is not None and max_images < 1:
        raise FaceganError(f"--max-images must be at least 1, got {max_images}")
    ckpt = load_checkpoint(checkpoint, **options)
    recipe = validate_recipe(ckpt["recipe"], source=f"{ckpt['path']} (stored recipe)")
    task = make_task(recipe)
    data_path = Path(data) if data is not None else Path(recipe.data.path)
    dataset = PackedDataset(data_path)
    if dataset.size != ckpt["size"]:
        raise FaceganError(f"{data_path} holds {dataset.size}px faces but the checkpoint was trained at {ckpt['size']}px")
    split_name = split or recipe.eval.split
    faces = dataset.split(split_name)
    limit = max_images or recipe.eval.max_images
    n = min(len(faces), limit) if limit else len(faces)
    if n == 0:
        raise FaceganError(f"split '{split_name}' of {data_path} is empty")
    settings = task.eval_settings(TaskOptions(**options), dataset.size)
    return EvalInputs(ckpt, recipe, task, data_path, split_name, faces, n, settings)


def eval_batches(inputs: EvalInputs, device: torch.device | str = "cpu") -> Iterator[tuple[int, int, Any]]:
    """``(start, stop, batch)`` over the first ``n`` faces, ``eval.batch`` at a time: the task's
    deterministic eval batch (fixed mask or degradation per image index) on ``device``."""
    from facegan.data.loader import to_model_range

    faces, bs = inputs.faces, inputs.recipe.eval.batch
    for start in range(0, inputs.n, bs):
        stop = min(inputs.n, start + bs)
        images = to_model_range(torch.from_numpy(np.array(faces.images[start:stop])).to(device))
        lms = torch.from_numpy(np.array(faces.landmarks[start:stop], dtype=np.float32)).to(device)
        yield start, stop, inputs.task.eval_batch(images, lms, range(start, stop), inputs.settings)


def eval_dir_for(ckpt_path: Path, bundled: str | None = None) -> Path:
    """<run>/eval for a run's checkpoint, runs/eval-<name> for a bundled model, else
    <checkpoint stem>_eval beside the file."""
    if bundled:
        return Path("runs") / f"eval-{bundled}"
    if ckpt_path.parent.name == "checkpoints":
        return ckpt_path.parent.parent / "eval"
    return ckpt_path.parent / f"{ckpt_path.stem}_eval"


def check_outputs(out_dir: Path | None, json_out: Path | None) -> None:
    """Refuse output paths that cannot be written, before any work starts."""
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise FaceganError(f"--out {out_dir} is a file; pass a folder for the CSV, JSON and grid")
    if json_out is not None and json_out.is_dir():
        raise FaceganError(f"--json {json_out} is a folder; pass a file name (e.g. {json_out / 'eval.json'})")


def evaluate(
    checkpoint: str | Path,
    data: str | Path | None = None,
    split: str | None = None,
    json_out: str | Path | None = None,
    identity_net: str | None = None,
    device: str = "auto",
    max_images: int | None = None,
    out_dir: str | Path | None = None,
    judge: str | None = None,
    console=None,
    references: bool = True,
    mirror: bool | None = None,
    reference_cache: bool = True,
    **options,
) -> Evaluation:
    """Score a checkpoint and write its CSV, JSON and grid; returns the :class:`Evaluation`.

    ``options`` are the task's options (``mask=`` for inpainting, ``scale=`` for super-
    resolution, which refuses a checkpoint of another scale); an option of another task is
    refused. ``references=False`` skips the no-model rows (``ablate`` does not print them).
    ``mirror`` True/False overrides the recipe's ``model.mirror_ensemble`` (mirror self-ensemble).
    ``reference_cache`` reuses the reference rows scored before on the same batches by the same
    code and networks (:mod:`facegan.reference_cache`); False neither reads nor writes them.
    """
    from facegan import metrics
    from facegan.engines.checkpoint import build_eval_generator
    from facegan.models.mirror import MirrorEnsemble
    from facegan.engines.runtime import pick_device
    from facegan.models.identity import load_identity_net
    from facegan.report import grid_image, save_image

    out_path = Path(out_dir) if out_dir is not None else None
    json_path = Path(json_out) if json_out is not None else None
    check_outputs(out_path, json_path)
    inputs = eval_inputs(checkpoint, data, split, max_images, **options)
    ckpt, recipe, task, settings = inputs.ckpt, inputs.recipe, inputs.task, inputs.settings
    ckpt_path, data_path, split_name, faces, n = Path(ckpt["path"]), inputs.data_path, inputs.split, inputs.faces, inputs.n
    dev = pick_device(device)
    id_name = identity_net or recipe.eval.identity_net or recipe.loss.identity_net
    id_weights = recipe.loss.identity_weights if id_name == recipe.loss.identity_net else None
    id_net = load_identity_net(id_name, id_weights, device=dev)
    judge_net = None
    if judge is not None:  # an independent network that training never saw (facegan.judge)
        from facegan.judge import load_judge

        judge_net = load_judge(judge, training_net=recipe.loss.identity_net if recipe.loss.identity > 0 else None, device=dev)
    gen = build_eval_generator(ckpt, dev, mirror)
    mirror = isinstance(gen, MirrorEnsemble)
    refs = task.references if references else ()
    ref_keys = tuple(r.key for r in refs)
    cache = None
    if refs and reference_cache:
        from facegan.reference_cache import ReferenceCache, scorer_digest

        cache = ReferenceCache(scorer_digest(recipe.task, ref_keys, dev, id_net, judge_net))

    rows: dict[str, dict[str, list[np.ndarray]]] = {"model": {}, **{r.key: {} for r in refs}}
    first_grid = None
    progress = _progress(console, n, f"eval {split_name} / {settings.label}")
    with progress if progress is not None else contextlib.nullcontext():
        task_id = progress.add_task("eval", total=n) if progress is not None else None
        for start, stop, batch in eval_batches(inputs, dev):
            with torch.no_grad():
                raw, result = task.run(gen, batch)
                outputs = {"model": result}
                cached = cache_file = None
                if cache is not None:
                    cache_file = cache.file_for(batch)
                    cached = cache.get(cache_file, ref_keys, stop - start)
                if refs and cached is None:
                    outputs.update(task.reference_outputs(batch))
                target_emb = id_net(batch.target)
                gt_u8 = metrics.to_uint8(batch.target)
                scored = {}
                for name, images_out in outputs.items():
                    per = task.score(metrics.to_uint8(images_out), gt_u8, batch)
                    per["id_cos"] = np.asarray(metrics.identity_cosine(id_net(images_out), target_emb), dtype=np.float64)
                    if judge_net is not None:
                        per.update(judge_net.score(images_out, batch.target))
                    scored[name] = per
                if cache is not None and cached is None:
                    cache.put(cache_file, {k: scored[k] for k in ref_keys})
                scored.update(cached or {})
                for name in rows:
                    for key, value in scored[name].items():
                        rows[name].setdefault(key, []).append(value)
            if first_grid is None:
                k = min(8, stop - start)
                first_grid = [(v.title, metrics.to_uint8(v.images[:k])) for v in task.visuals(batch, raw, result)]
            if progress is not None:
                progress.update(task_id, completed=stop)

    per_image = {name: {k: np.concatenate(v) for k, v in values.items()} for name, values in rows.items()}
    values = per_image.pop("model")
    estimates = {name: _estimates(v) for name, v in [("model", values), *per_image.items()]}
    paired = {r.key: _paired(values, per_image[r.key]) for r in refs}

    target_dir = out_path if out_path is not None else eval_dir_for(ckpt_path, ckpt.get("bundled"))
    stem = f"{split_name}_{settings.label}"
    csv_path = target_dir / f"{stem}.csv"
    _write_csv(csv_path, faces.files[:n], faces.identities[:n], values, per_image)
    save_image(grid_image(first_grid), target_dir / f"{stem}.png")

    summary = {
        "metrics": {k: e.mean for k, e in estimates["model"].items()},
        "ci95": {k: e.half for k, e in estimates["model"].items()},
        "n_images": n,
        "task": recipe.task,
        "checkpoint": str(ckpt_path),
        "step": ckpt.get("step"),
        "mirror_ensemble": mirror,
        "dataset": str(data_path),
        "split": split_name,
        **settings.summary,
        "identity_net": id_name,
        "judge": judge_net.name if judge_net is not None else None,
        "per_image_csv": str(csv_path),
        "conventions": metrics.METRIC_CONVENTIONS,
    }
    if cache is not None:
        summary["reference_cache"] = {"folder": str(cache.folder), "batches_reused": cache.hits,
                                      "batches_scored": cache.misses}
    if refs:
        summary["reference"] = {"name": refs[0].name, "metrics": {k: e.mean for k, e in estimates[refs[0].key].items()}}
        summary["references"] = {
            r.key: {"name": r.name, "metrics": {k: e.mean for k, e in estimates[r.key].items()},
                    "ci95": {k: e.half for k, e in estimates[r.key].items()}}
            for r in refs
        }
        for r in refs:  # each reference's means also under its own key (e.g. "bicubic")
            summary[r.key] = summary["references"][r.key]["metrics"]
        summary["paired"] = {r.key: {k: asdict(d) for k, d in paired[r.key].items()} for r in refs}
    _write_json(summary, target_dir / f"{stem}.json", json_path)

    if console is not None:
        table_rows = [(f"{recipe.name} @ step {ckpt.get('step')}" + (" + mirror" if mirror else ""), estimates["model"])]
        table_rows += [(r.name, estimates[r.key]) for r in refs]
        columns = [*task.metric_columns, metric_info.ID_COS, *(metric_info.JUDGE if judge_net else ())]
        cap = (f"{n} images of {data_path}/{split_name}, {settings.caption}; mean ± 95% CI over images "
               f"(Student t); identity by {id_name}. Conventions: `facegan eval --help`.")
        if mirror:
            cap += " + mirror: the mean of the generator's outputs on each face and its mirror image."
        if judge_net is not None:
            cap += f" Judge: {judge_net.name} (never used in training)."
        from facegan.report import metrics_table, paired_table

        console.print(metrics_table(f"facegan eval ({task.label})", table_rows, columns, caption=cap))
        if refs:
            console.print(paired_table("model − reference, paired over the same images",
                                       [(f"model − {r.key}", paired[r.key]) for r in refs], columns,
                                       caption=PAIRED_CAPTION))
        if cache is not None:
            from rich.markup import escape

            console.print(f"reference rows: {cache.hits} of {cache.hits + cache.misses} batches reused from "
                          f"{escape(str(cache.folder))} (--rescore-references to score them again)")
            if cache.write_error:
                console.print(f"[yellow]reference cache not written:[/] {escape(cache.write_error)}")
        console.print(f"per-image CSV: {csv_path}\ngrid: {target_dir / (stem + '.png')}")
    return Evaluation(summary, list(faces.files[:n]), list(faces.identities[:n]), values, per_image)


def _estimates(values: dict[str, np.ndarray]) -> dict:
    from facegan.stats import mean_ci

    return {k: mean_ci(v) for k, v in values.items()}


def _paired(model: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict:
    """Per metric, the paired difference model − reference over the same images."""
    from facegan.stats import paired_difference

    return {k: paired_difference(v, reference[k]) for k, v in model.items() if k in reference}


def _write_csv(path: Path, files: list[str], identities: list[str], values: dict[str, np.ndarray],
               references: dict[str, dict[str, np.ndarray]]) -> None:
    """One row per image: the model's metrics, then each reference's as ``<reference>_<metric>``
    (e.g. ``bicubic_psnr_y``), so any paired comparison can be redone from the file."""
    from facegan.atomic import atomic_write_bytes

    columns = list(values.items())
    columns += [(f"{ref}_{k}", v) for ref, ref_values in references.items() for k, v in ref_values.items()]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["index", "file", "identity", *(name for name, _ in columns)])
    for i, (file, identity) in enumerate(zip(files, identities)):
        writer.writerow([i, file, identity, *(repr(float(v[i])) for _, v in columns)])
    atomic_write_bytes(path, buf.getvalue().encode())


def _write_json(summary: dict, path: Path, also: Path | None) -> None:
    from facegan.atomic import atomic_write_bytes

    text = json.dumps(summary, indent=2, default=float).encode()
    atomic_write_bytes(path, text)
    if also is not None:
        atomic_write_bytes(also, text)


def _progress(console, total: int, label: str):
    if console is None:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True)
