"""The PyTorch back-end of the restorer protocol: :class:`TorchRestorer`.

It holds a checkpoint's EMA generator (with its mirror self-ensemble when the recipe asks for
one, :mod:`facegan.models.mirror`) on a device, and restores aligned faces through the task's
:meth:`~facegan.tasks.base.Task.infer` (inpainting fills the given holes, super-resolution
upscales).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facegan.checkpoints.checkpoint import Checkpoint
from facegan.core.device import pick_device
from facegan.restoring.restorer import Restorer
from facegan.tasks.base import TaskOptions


class TorchRestorer(Restorer):
    """A checkpoint's generator and task, applied to aligned faces (:class:`Restorer`)."""

    def __init__(self, ckpt: Checkpoint, device: str | torch.device = "auto", mirror: bool | None = None) -> None:
        super().__init__(ckpt, pick_device(str(device)))
        self.gen = ckpt.build_generator(self.device, mirror)

    @classmethod
    def find(cls, task: str, checkpoint: str | Path | None = None, device: str = "auto", console=None,
             mirror: bool | None = None, **options) -> TorchRestorer:
        """The checkpoint (else the bundled model of ``task`` serving ``options``:
        :meth:`Checkpoint.find`) as a restorer; ``mirror`` True/False overrides the recipe's
        ``model.mirror_ensemble``."""
        return cls(Checkpoint.find(checkpoint, task, TaskOptions(**options), console), device, mirror)

    def restore_batch(self, faces: np.ndarray, holes: np.ndarray | torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
        return self.task.infer(self.gen, faces, holes)
