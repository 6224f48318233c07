"""`facegan export --benchmark`: how fast the exported file runs next to the PyTorch restorer."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from facegan.checkpoints.checkpoint import Checkpoint
from facegan.restoring.exported_file import ExportedFile
from facegan.restoring.parity import example_faces
from facegan.restoring.torch_restorer import TorchRestorer


def latency(path: Path, fmt: str, ckpt: Checkpoint, batches=(1, 8), repeats: int = 10) -> dict[str, dict[int, float]]:
    """Milliseconds per face of the exported file and of the PyTorch restorer (both on the CPU),
    per batch size: ``{fmt: {batch: ms}, "pytorch": {batch: ms}}``."""
    restorer = TorchRestorer(ckpt, "cpu")
    exported = ExportedFile(path, fmt)
    faces, holes = example_faces(restorer.task, 1)
    out: dict[str, dict[int, float]] = {fmt: {}, "pytorch": {}}
    for b in batches:
        f = np.repeat(faces, b, axis=0)
        h = np.repeat(holes, b, axis=0) if holes is not None else None
        runners = {fmt: lambda: exported.run(f, h),
                   "pytorch": lambda: restorer.restore(f, h > 127 if h is not None else None, batch_size=b)}
        for name, fn in runners.items():
            fn()
            t = time.perf_counter()
            for _ in range(repeats):
                fn()
            out[name][b] = (time.perf_counter() - t) / repeats / b * 1e3
    return out
