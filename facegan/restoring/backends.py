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
                  console=None, fidelity: float | None = None) -> Restorer:
    """The restorer of ``task`` serving ``options`` on the chosen back-end (:func:`pick_backend`).

    ``torch``: ``checkpoint``, else the bundled model of ``task`` (:meth:`Checkpoint.find`, said
    on ``console``), on ``device``, ``mirror`` True/False overriding the recipe's self-ensemble,
    at ``fidelity`` (:mod:`facegan.checkpoints.fidelity`; None: the bundled model restore chose
    runs at the default of its GAN partner, a named model as it is, a named GAN model at its
    card's default). ``onnx``: the exported file
    ``checkpoint`` (needed), which runs on the CPU as it was exported (so ``mirror`` and
    ``fidelity`` are refused).
    """
    backend = pick_backend(backend, checkpoint)
    if backend == "torch":
        from facegan.checkpoints.fidelity import at_fidelity, realism_default

        ckpt = Checkpoint.find(checkpoint, task, options, console)
        if fidelity is None and checkpoint is None:  # restore's own choice: the pair at its default
            fidelity = realism_default(ckpt)
        ckpt = at_fidelity(ckpt, fidelity)
        if ckpt.fidelity is not None and console is not None:
            console.print(f"{ckpt.name}: fidelity {ckpt.fidelity:g} (0 = the GAN model, 1 = the PSNR model; "
                          "--fidelity to choose)")
        return TorchRestorer(ckpt, device, mirror)
    if fidelity is not None:
        raise FaceganError("--fidelity: an exported model runs at the fidelity it was exported with "
                           "(facegan export --fidelity); restore with --backend torch to choose")
    if mirror is not None:
        raise FaceganError("--mirror/--no-mirror: an exported model runs as it was exported (its recipe's "
                           "model.mirror_ensemble); restore with --backend torch to choose")
    if checkpoint is None:
        raise FaceganError("--backend onnx needs --checkpoint MODEL.onnx (made by `facegan export`)")
    return OnnxRestorer(checkpoint).check(task, options)


def open_face_models(task: str, checkpoint: str | Path | None = None, backend: str | None = None,
                     options: TaskOptions = TaskOptions(), device: str = "auto", mirror: bool | None = None,
                     console=None, fidelity: float | None = None):
    """The face models one ``restore`` picks from (:class:`facegan.restoring.face_models.FaceModels`):
    the named ``checkpoint`` alone; else, for super-resolution, every bundled SR model (one per
    input size: each face gets the one that fits it), and for inpainting the bundled model."""
    from facegan.checkpoints import bundled
    from facegan.restoring.face_models import FaceModels

    if checkpoint is not None or task != "sr":
        return FaceModels([open_restorer(task, checkpoint, backend, options, device, mirror, console, fidelity)])
    scales = sorted({m.scale for m in bundled.list_models() if m.task == "sr" and m.scale})
    if not scales:
        raise FaceganError("no bundled super-resolution model: pass --checkpoint FILE_OR_RUN")
    return FaceModels([open_restorer(task, None, backend, TaskOptions(scale=s), device, mirror, console, fidelity)
                       for s in scales])
