"""Which restorer `facegan restore` runs: :func:`open_restorer` picks the back-end and loads it.

The back-ends (:data:`BACKENDS`) implement :class:`facegan.restoring.restorer.Restorer`:
``torch`` (:class:`~facegan.restoring.torch_restorer.TorchRestorer`, a checkpoint file, run
folder or bundled model) and ``onnx`` (:class:`~facegan.restoring.onnx_restorer.OnnxRestorer`,
a file made by ``facegan export``).
"""

from __future__ import annotations

from pathlib import Path

from facegan.checkpoints.checkpoint import Checkpoint
from facegan.core.errors import FaceganError
from facegan.restoring.onnx_restorer import OnnxRestorer
from facegan.restoring.restorer import Restorer
from facegan.restoring.torch_restorer import TorchRestorer
from facegan.tasks.base import TaskOptions

#: The back-ends, by the name ``--backend`` takes.
BACKENDS: tuple[str, ...] = ("torch", "onnx")


def pick_backend(backend: str | None, checkpoint: str | Path | None) -> str:
    """``backend`` when given; else ``onnx`` for a ``.onnx`` checkpoint and ``torch`` otherwise."""
    exported = checkpoint is not None and str(checkpoint).endswith(".onnx")
    if backend is None:
        return "onnx" if exported else "torch"
    if backend not in BACKENDS:
        raise FaceganError(f"--backend {backend!r}: choose {' or '.join(BACKENDS)}")
    if backend == "torch" and exported:
        raise FaceganError(f"--backend torch cannot run the exported file {checkpoint}; use --backend onnx "
                           "(the default for a .onnx checkpoint)")
    return backend


def open_restorer(task: str, checkpoint: str | Path | None = None, backend: str | None = None,
                  options: TaskOptions = TaskOptions(), device: str = "auto", mirror: bool | None = None,
                  runs_dir: str | Path = "runs", console=None) -> Restorer:
    """The restorer of ``task`` serving ``options`` on the chosen back-end (:func:`pick_backend`).

    ``torch``: ``checkpoint``, else the newest run of ``task`` in ``runs_dir``, else the bundled
    model (:meth:`Checkpoint.find`, said on ``console``), on ``device``, ``mirror`` True/False
    overriding the recipe's self-ensemble. ``onnx``: the exported file ``checkpoint`` (needed),
    which runs on the CPU as it was exported (so ``mirror`` is refused).
    """
    backend = pick_backend(backend, checkpoint)
    if backend == "torch":
        return TorchRestorer(Checkpoint.find(checkpoint, task, Path(runs_dir), options, console), device, mirror)
    if mirror is not None:
        raise FaceganError("--mirror/--no-mirror: an exported model runs as it was exported (its recipe's "
                           "model.mirror_ensemble); restore with --backend torch to choose")
    if checkpoint is None:
        raise FaceganError("--backend onnx needs --checkpoint MODEL.onnx (made by `facegan export`)")
    return OnnxRestorer(checkpoint).check(task, options)
