"""What ``facegan eval`` scores a checkpoint on: its task, the faces of one split and the task's
fixed inputs for them.

The inputs are deterministic per image (an inpainting hole depends only on mask type, image
index and seed; super-resolution uses plain bicubic reductions), so two runs are scored on the
same inputs and can be compared image by image. ``scripts/grid_pattern.py`` feeds a model the
same batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan.checkpoints.checkpoint import Checkpoint
from facegan.core.errors import FaceganError


@dataclass
class EvalInputs:
    """What ``eval`` feeds a checkpoint: its task, the faces it is scored on and the fixed settings."""

    ckpt: Checkpoint
    recipe: Any
    """The checkpoint's validated recipe."""
    task: Any
    """The recipe's :class:`facegan.tasks.base.Task`."""
    data_path: Path
    split: str
    faces: Any
    """The split (:class:`facegan.data.packed.Split`); the first ``n`` faces are scored."""
    n: int
    settings: Any
    """The task's :class:`facegan.tasks.base.EvalSettings` for these options."""


def eval_inputs(checkpoint: str | Path, data: str | Path | None = None, split: str | None = None,
                max_images: int | None = None, fidelity: float | None = None, **options) -> EvalInputs:
    """Load a checkpoint (file, run folder or bundled name) and open the faces it is scored on:
    the recipe's dataset and eval split unless given, at most ``max_images`` (or the recipe's
    ``eval.max_images``), at ``fidelity`` (:func:`facegan.checkpoints.fidelity.at_fidelity`). Refuses a dataset of another face size and an empty split."""
    from facegan.data.packed import PackedDataset
    from facegan.tasks.base import TaskOptions

    if max_images is not None and max_images < 1:
        raise FaceganError(f"--max-images must be at least 1, got {max_images}")
    from facegan.checkpoints.fidelity import at_fidelity

    ckpt = at_fidelity(Checkpoint.load(checkpoint, options=TaskOptions(**options)), fidelity)
    recipe, task = ckpt.recipe, ckpt.task
    data_path = Path(data) if data is not None else Path(recipe.data.path)
    dataset = PackedDataset(data_path)
    if dataset.size != ckpt.size:
        raise FaceganError(f"{data_path} holds {dataset.size}px faces but the checkpoint was trained at {ckpt.size}px")
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
