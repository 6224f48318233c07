"""The ONNX back-end of the restorer protocol: :class:`OnnxRestorer`.

``facegan restore --backend onnx`` runs the generator of a file made by ``facegan export``
with onnxruntime (CPU), through the same detect, align and paste-back pipeline as the PyTorch
back-end. What the model is (task, sizes, template, recipe) comes from the file's metadata
(:meth:`facegan.checkpoints.checkpoint.Checkpoint.from_onnx_metadata`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facegan.checkpoints.checkpoint import Checkpoint
from facegan.restoring.exported_file import ExportedFile
from facegan.restoring.restorer import Restorer


class OnnxRestorer(Restorer):
    """An exported ONNX file as a :class:`Restorer` (it runs on the CPU)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file = ExportedFile(self.path, "onnx")
        super().__init__(Checkpoint.from_onnx_metadata(self.path, self.file.metadata), "cpu")

    def restore_batch(self, faces: np.ndarray, holes: np.ndarray | torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
        if holes is not None:
            holes = np.asarray(holes).reshape(len(faces), self.size, self.size) > 0.5
        outputs = self.file.run(faces, holes)
        result = _from01(outputs[0])
        return (_from01(outputs[1]) if len(outputs) > 1 else result), result


def _from01(images: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
