"""Restoring aligned faces with a trained generator: :class:`Restorer`.

A :class:`Restorer` holds a checkpoint's EMA generator and its task
(:class:`facegan.engines.task.Task`), and restores *aligned* faces: uint8 arrays in, uint8
arrays out, through the task's :meth:`~facegan.engines.task.Task.infer` (inpainting fills the
given holes, super-resolution upscales). `facegan restore` (:mod:`facegan.photo`) finds,
aligns and pastes faces back around it, for aligned crops (``--aligned``) and whole photos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facegan.errors import FaceganError


def find_checkpoint(checkpoint: str | Path | None, task: str, runs_dir: Path, console=None, **options) -> dict:
    """Load ``checkpoint`` (file, run folder or bundled model name); without one, the newest run
    of ``task`` in ``runs_dir``, else the bundled model of ``task``.

    ``options`` are the task options asked for (e.g. ``scale=2`` picks the newest ×2 run and
    refuses a checkpoint of another scale).
    """
    from facegan.bundled import default_model
    from facegan.engines.checkpoint import load_checkpoint, newest_run_checkpoint

    if checkpoint is None:
        try:
            path = newest_run_checkpoint(runs_dir, task, **options)
        except FaceganError as no_run:
            model = default_model(task, options.get("scale"))
            if model is None:
                raise no_run from None
            if console is not None:
                console.print(f"using the bundled model {model.name} ({model.card.get('training_data', '')}; "
                              f"licence: {model.card.get('licence', '?')}); pass --checkpoint to choose")
            return load_checkpoint(model.name, task=task, **options)
        if console is not None:
            console.print(f"using the newest {task} run: {path.parent.parent} (pass --checkpoint to choose)")
        checkpoint = path
    return load_checkpoint(checkpoint, task=task, **options)


class Restorer:
    """A checkpoint's generator (EMA weights; with its mirror self-ensemble when the recipe
    asks for one, :mod:`facegan.models.mirror`) and task, applied to aligned faces."""

    def __init__(self, ckpt: dict, device: str | torch.device = "auto", mirror: bool | None = None) -> None:
        from facegan.engines.checkpoint import build_eval_generator
        from facegan.engines.runtime import pick_device
        from facegan.engines.tasks import make_task
        from facegan.recipe import validate_recipe

        self.ckpt = ckpt
        self.task = make_task(validate_recipe(ckpt["recipe"], source=f"{ckpt.get('path', 'checkpoint')} (stored recipe)"))
        points = (ckpt.get("template") or {}).get("points")
        self.template = np.asarray(points, dtype=np.float64) if points else None
        self.device = pick_device(str(device))
        self.gen = build_eval_generator(ckpt, self.device, mirror)

    @classmethod
    def find(cls, task: str, checkpoint: str | Path | None = None, runs_dir: str | Path = "runs",
             device: str = "auto", console=None, mirror: bool | None = None, **options) -> "Restorer":
        """The checkpoint (or the newest run of ``task`` serving ``options``) as a Restorer;
        ``mirror`` True/False overrides the recipe's ``model.mirror_ensemble``."""
        return cls(find_checkpoint(checkpoint, task, Path(runs_dir), console, **options), device, mirror)

    @property
    def size(self) -> int:
        """Side of the restored faces."""
        return self.task.size

    @property
    def scale(self) -> int | None:
        """How many times larger the restored faces are than the input ones (None: the same)."""
        return self.task.scale

    @property
    def input_size(self) -> int:
        """Side of the faces the generator takes (size / scale for super-resolution)."""
        return self.task.input_size

    def restore(self, faces: np.ndarray, holes: np.ndarray | torch.Tensor | None = None,
                batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """Restore aligned faces, ``batch_size`` per generator call.

        ``faces``: uint8 (N,s,s,3) at :attr:`input_size`, aligned on the model's template;
        ``holes`` (N,S,S) or (N,1,S,S), 1 = hole, for a task that takes holes. Returns
        (raw generator output, result), both uint8 (N,S,S,3).
        """
        faces = np.asarray(faces)
        if len(faces) == 0:
            empty = np.zeros((0, self.size, self.size, 3), np.uint8)
            return empty, empty.copy()
        raws, results = [], []
        for start in range(0, len(faces), batch_size):
            part = None if holes is None else holes[start : start + batch_size]
            raw, result = self.task.infer(self.gen, faces[start : start + batch_size], part)
            raws.append(raw)
            results.append(result)
        return np.concatenate(raws), np.concatenate(results)
