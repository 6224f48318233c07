"""`facegan eval`: score a checkpoint's EMA generator on fixed inputs (DESIGN §3, §4).

Inpainting: every image of the split gets a deterministic hole (a function of mask type, image
index and seed), so two runs are scored on the same holes and can be compared image by image.
Super-resolution: every image is reduced by the checkpoint's scale with plain antialiased
bicubic (8-bit), and PSNR/SSIM crop ``scale`` pixels per border, on RGB and on MATLAB Y.
Images are quantised to uint8 before scoring; each metric is computed per image, then averaged.
Beside the model, the task's no-model reference is scored the same way (inpaint: the hole left
grey; sr: bicubic upscaling). Outputs: a rich table (mean and 95% confidence half-width over
images), a per-image CSV, a JSON summary and a grid of the first faces, in ``<run>/eval/``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import torch

from facegan.errors import FaceganError

#: (key, header, format) of the inpainting table; the JSON "metrics" keys are the same.
INPAINT_COLUMNS = [
    ("psnr", "PSNR (dB)", "{:.2f}"),
    ("ssim", "SSIM", "{:.4f}"),
    ("hole_l1", "hole L1 x100", "{:.2f}"),
    ("hole_psnr", "hole PSNR (dB)", "{:.2f}"),
    ("id_cos", "identity cos", "{:.4f}"),
]

#: Extra columns when an independent judge scores identity (``--judge``).
JUDGE_COLUMNS = [
    ("judge_cos", "judge cos", "{:.4f}"),
    ("judge_verified", "judge verified", "{:.1%}"),
]


def eval_dir_for(ckpt_path: Path) -> Path:
    """<run>/eval for a run's checkpoint, else <checkpoint stem>_eval beside the file."""
    if ckpt_path.parent.name == "checkpoints":
        return ckpt_path.parent.parent / "eval"
    return ckpt_path.parent / f"{ckpt_path.stem}_eval"


def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """Mean and 95% normal-approximation half-width over finite values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    half = 1.96 * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return float(v.mean()), float(half)


def evaluate(
    checkpoint: str | Path,
    data: str | Path | None = None,
    split: str | None = None,
    mask: str | None = None,
    json_out: str | Path | None = None,
    identity_net: str | None = None,
    device: str = "auto",
    max_images: int | None = None,
    out_dir: str | Path | None = None,
    judge: str | None = None,
    console=None,
    scale: int | None = None,
) -> dict:
    """Score a checkpoint; returns the JSON summary (also written to disk).

    ``mask`` is for inpainting checkpoints; ``scale``, for super-resolution ones, refuses a
    checkpoint of another scale. An SR summary also holds ``scale`` and ``bicubic`` (the
    reference's metrics, the same keys as ``metrics``).
    """
    from facegan import metrics
    from facegan.data import mask_files
    from facegan.data.loader import to_model_range
    from facegan.data.packed import PackedDataset
    from facegan.engines.checkpoint import build_eval_generator, load_checkpoint
    from facegan.engines.runtime import pick_device
    from facegan.engines.tasks import make_task
    from facegan.models.identity import load_identity_net
    from facegan.recipe import validate_recipe
    from facegan.report import atomic_write_bytes, grid_image, metrics_table, save_image

    ckpt = load_checkpoint(checkpoint, scale=scale)
    ckpt_path = Path(ckpt["path"])
    recipe = validate_recipe(ckpt["recipe"], source=f"{ckpt_path} (stored recipe)")
    if recipe.task != "inpaint" and mask is not None:
        raise FaceganError(f"--mask is for inpainting runs; {ckpt_path} is a '{recipe.task}' checkpoint")
    dev = pick_device(device)
    data_path = Path(data) if data is not None else Path(recipe.data.path)
    dataset = PackedDataset(data_path)
    if dataset.size != ckpt["size"]:
        raise FaceganError(f"{data_path} holds {dataset.size}px faces but the checkpoint was trained at {ckpt['size']}px")
    split_name = split or recipe.eval.split
    faces = dataset.split(split_name)
    n = len(faces) if not (max_images or recipe.eval.max_images) else min(len(faces), max_images or recipe.eval.max_images)
    if n == 0:
        raise FaceganError(f"split '{split_name}' of {data_path} is empty")

    task = make_task(recipe)
    if recipe.task == "inpaint":
        mask_arg = mask or recipe.eval.mask
        spec = mask_files.parse_mask_spec(mask_arg)
        mask_name = spec if isinstance(spec, str) else Path(spec).stem
        mask_value = spec if isinstance(spec, str) else mask_files.load_mask_file(spec, dataset.size)
        seed, setting = recipe.eval.seed, mask_name
    else:  # sr: deterministic bicubic reduction by the checkpoint's scale
        mask_name = mask_value = seed = None
        setting = f"x{task.scale}"
    columns, score = _scoring(task)
    id_name = identity_net or recipe.eval.identity_net or recipe.loss.identity_net
    id_weights = recipe.loss.identity_weights if id_name == recipe.loss.identity_net else None
    id_net = load_identity_net(id_name, id_weights, device=dev)
    judge_net = None
    if judge is not None:  # an independent network that training never saw (facegan.judge)
        from facegan.judge import load_judge

        judge_net = load_judge(judge, training_net=recipe.loss.identity_net if recipe.loss.identity > 0 else None, device=dev)
    gen = build_eval_generator(ckpt, dev)

    scores: dict[str, dict[str, list[np.ndarray]]] = {"model": {}, "reference": {}}
    first_grid = None
    bs = recipe.eval.batch
    progress = _progress(console, n, f"eval {split_name} / {setting}")
    with progress if progress is not None else contextlib.nullcontext():
        task_id = progress.add_task("eval", total=n) if progress is not None else None
        for start in range(0, n, bs):
            stop = min(n, start + bs)
            images = to_model_range(torch.from_numpy(np.array(faces.images[start:stop])).to(dev))
            lms = torch.from_numpy(np.array(faces.landmarks[start:stop], dtype=np.float32)).to(dev)
            batch = task.eval_batch(images, lms, range(start, stop), mask_value, seed)
            with torch.no_grad():
                raw, result = task.run(gen, batch)
                target_emb = id_net(batch.target)
                outputs = {"model": result, "reference": task.reference(batch)}
                gt_u8 = metrics.to_uint8(batch.target)
                for name, images_out in outputs.items():
                    cos = metrics.identity_cosine(id_net(images_out), target_emb)
                    per = score(metrics.to_uint8(images_out), gt_u8, batch, cos)
                    if judge_net is not None:
                        per.update(judge_net.score(images_out, batch.target))
                    for key, value in per.items():
                        scores[name].setdefault(key, []).append(value)
            if first_grid is None:
                k = min(8, stop - start)
                first_grid = [(v.title, metrics.to_uint8(v.images[:k])) for v in task.visuals(batch, raw, result)]
            if progress is not None:
                progress.update(task_id, completed=stop)

    values = {k: np.concatenate(v) for k, v in scores["model"].items()}
    ref_values = {k: np.concatenate(v) for k, v in scores["reference"].items()}
    summary, ci = {}, {}
    for k in values:
        summary[k], ci[k] = mean_ci(values[k])
    reference = {k: mean_ci(v)[0] for k, v in ref_values.items()}

    target_dir = Path(out_dir) if out_dir is not None else eval_dir_for(ckpt_path)
    stem = f"{split_name}_{setting}"
    csv_path = target_dir / f"{stem}.csv"
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["index", "file", "identity", *values.keys()])
    for i in range(n):
        writer.writerow([i, faces.files[i], faces.identities[i], *(f"{values[k][i]:.6f}" for k in values)])
    atomic_write_bytes(csv_path, buf.getvalue().encode())
    save_image(grid_image(first_grid), target_dir / f"{stem}.png")

    result = {
        "metrics": summary,
        "ci95": ci,
        "reference": {"name": task.reference_name, "metrics": reference},
        "n_images": n,
        "task": recipe.task,
        "checkpoint": str(ckpt_path),
        "step": ckpt.get("step"),
        "dataset": str(data_path),
        "split": split_name,
        "mask": mask_name,
        "mask_seed": seed,
        "identity_net": id_name,
        "judge": judge_net.name if judge_net is not None else None,
        "per_image_csv": str(csv_path),
        "conventions": metrics.METRIC_CONVENTIONS,
    }
    if task.scale is not None:  # sr: the bicubic reference under its own name, and the scale
        result["scale"] = task.scale
        result["bicubic"] = reference
    text = json.dumps(result, indent=2, default=float)
    atomic_write_bytes(target_dir / f"{stem}.json", text.encode())
    if json_out is not None:
        atomic_write_bytes(Path(json_out), text.encode())

    if console is not None:
        rows = [(f"{recipe.name} @ step {ckpt.get('step')}", summary), (task.reference_name, reference)]
        if recipe.task == "inpaint":
            inputs = f"mask '{mask_name}' (seed {seed})"
            how = "PSNR/SSIM on the composite, uint8"
        else:
            inputs = f"x{task.scale} bicubic input ({dataset.size // task.scale} px)"
            how = f"PSNR/SSIM with {task.scale} px cropped per border, uint8, Y = MATLAB rgb2ycbcr"
        cap = (f"{n} images of {data_path}/{split_name}, {inputs}; mean over images, "
               f"± 95% CI: " + ", ".join(f"{k} ±{ci[k]:.3g}" for k in ci)
               + f"; identity by {id_name}. {how} (see `facegan eval --help`).")
        if judge_net is not None:
            cap += f" Judge: {judge_net.name} (never used in training)."
        title = f"facegan eval ({recipe.task}{f' x{task.scale}' if task.scale else ''})"
        console.print(metrics_table(title, rows, columns + (JUDGE_COLUMNS if judge_net else []), caption=cap))
        console.print(f"per-image CSV: {csv_path}\ngrid: {target_dir / (stem + '.png')}")
    return result


def _scoring(task):
    """(table columns, per-image scorer) of a task.

    A task may bring its own (``metric_columns`` and ``score(out_u8, gt_u8, batch)``, e.g.
    super-resolution); inpainting's are defined here. The identity cosine is added to either.
    """
    own = getattr(task, "score", None)
    if own is None:
        def inpaint_score(out_u8, gt_u8, batch, cos):
            return _score(out_u8, gt_u8, batch.mask[:, 0].cpu().numpy() > 0.5, cos)

        return INPAINT_COLUMNS, inpaint_score

    def task_score(out_u8, gt_u8, batch, cos):
        return {**own(out_u8, gt_u8, batch), "id_cos": np.asarray(cos, dtype=np.float64)}

    return list(task.metric_columns), task_score


def _score(out_u8: np.ndarray, gt_u8: np.ndarray, hole: np.ndarray, cos: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image inpainting metrics of a batch (DESIGN §4)."""
    from facegan import metrics

    return {
        "psnr": metrics.psnr(out_u8, gt_u8),
        "ssim": metrics.ssim(out_u8, gt_u8),
        "hole_l1": metrics.hole_l1(out_u8, gt_u8, hole),
        "hole_psnr": metrics.hole_psnr(out_u8, gt_u8, hole),
        "id_cos": np.asarray(cos, dtype=np.float64),
    }


def _progress(console, total: int, label: str):
    if console is None:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True)
