"""The restorer protocol: what `facegan restore` needs of a back-end, :class:`Restorer`.

A restorer restores *aligned* faces: uint8 arrays in, uint8 arrays out. It holds the
:class:`~facegan.checkpoints.checkpoint.Checkpoint` it serves, that checkpoint's task
(:class:`facegan.tasks.base.Task`: sizes, whether it takes a hole) and template, and the device
it runs on. The photo pipeline (:mod:`facegan.restoring.photo`) finds, aligns and pastes faces
back around it and uses nothing else.

:meth:`Restorer.restore` does what every back-end shares (batches, the empty input, the hole
check); a back-end writes only :meth:`Restorer.restore_batch`. The back-ends:
:class:`facegan.restoring.torch_restorer.TorchRestorer` (the checkpoint's PyTorch generator) and
:class:`facegan.restoring.onnx_restorer.OnnxRestorer` (a file made by ``facegan export``);
:func:`facegan.restoring.backends.open_restorer` picks one for ``facegan restore``.
"""

from __future__ import annotations

import abc

import numpy as np
import torch

from facegan.checkpoints.checkpoint import Checkpoint
from facegan.tasks.base import TaskOptions


class Restorer(abc.ABC):
    """Restores aligned faces with a checkpoint's model; see the module docstring."""

    def __init__(self, ckpt: Checkpoint, device: str | torch.device = "cpu") -> None:
        self.ckpt = ckpt
        """The checkpoint served (for an exported file: its metadata, no weights)."""
        self.task = ckpt.task
        """The checkpoint's task engine."""
        self.template = ckpt.template_points
        """The five template landmarks the model was trained on (None: facegan's default)."""
        self.device = torch.device(device)
        """Where the model runs (face detection runs there too)."""

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
        """Side of the faces the model takes (size / scale for super-resolution)."""
        return self.task.input_size

    def check(self, task: str | None = None, options: TaskOptions = TaskOptions()) -> Restorer:
        """FaceganError unless the checkpoint is a ``task`` model serving ``options``; returns itself."""
        self.ckpt.check(task, options)
        return self

    def restore(self, faces: np.ndarray, holes: np.ndarray | torch.Tensor | None = None,
                batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """Restore aligned faces, ``batch_size`` per model call.

        ``faces``: uint8 (N,s,s,3) at :attr:`input_size`, aligned on the model's template;
        ``holes`` (N,S,S) or (N,1,S,S), 1 = hole, for a task that takes holes (ignored
        otherwise). Returns (raw model output, result), both uint8 (N,S,S,3).
        """
        faces = np.asarray(faces)
        if len(faces) == 0:
            empty = np.zeros((0, self.size, self.size, 3), np.uint8)
            return empty, empty.copy()
        if self.task.takes_hole and holes is None:
            raise ValueError(f"a {self.task.noun} model needs a hole for every face")
        raws, results = [], []
        for start in range(0, len(faces), batch_size):
            part = holes[start : start + batch_size] if self.task.takes_hole else None
            raw, result = self.restore_batch(faces[start : start + batch_size], part)
            raws.append(raw)
            results.append(result)
        return np.concatenate(raws), np.concatenate(results)

    @abc.abstractmethod
    def restore_batch(self, faces: np.ndarray, holes: np.ndarray | torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
        """One model call: :meth:`restore` for at most ``batch_size`` faces (at least one);
        ``holes`` is None for a task that takes none."""
