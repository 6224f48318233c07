"""Checkpoints (docs/design.md, "Checkpoints"): one file per save, written atomically, self-sufficient.

A checkpoint holds the generator, discriminator, both optimizers and schedulers, the EMA
generator, the step, the fully resolved recipe, the task (and SR scale), the aligned-face
template, the facegan version and format version. ``eval`` and ``restore`` need nothing else.
It is loaded with ``weights_only=True``: a checkpoint never executes code.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from facegan.atomic import atomic_write
from facegan.errors import FaceganError

FORMAT = "facegan-checkpoint"
FORMAT_VERSION = 1


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save through :func:`facegan.atomic.atomic_write`: a reader sees the old file or
    the new one, never half of one."""
    atomic_write(path, lambda f: torch.save(obj, f))


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run folder (-> its checkpoints/last.pt)."""
    p = Path(path)
    if p.is_dir():
        last = p / "checkpoints" / "last.pt"
        if not last.is_file():
            raise FaceganError(f"{p} has no checkpoints/last.pt; is it a finished `facegan train` run?")
        return last
    if not p.is_file():
        raise FaceganError(f"checkpoint {p} not found (nor a bundled model of that name: see `facegan models`)")
    return p


def read_checkpoint(path: Path, mmap: bool = False) -> dict:
    """The facegan checkpoint in the file ``path`` (format checked, nothing else); ``mmap``
    maps the tensors instead of reading them (for a quick look at its fields)."""
    try:
        with warnings.catch_warnings():  # torch's remarks on foreign pickles: we refuse them anyway
            warnings.simplefilter("ignore", UserWarning)
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # truncated file, not a torch file, pickled code...
        raise FaceganError(f"{path} is not a readable facegan checkpoint ({type(err).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise FaceganError(f"{path} is not a facegan checkpoint")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise FaceganError(f"{path} was written by a newer facegan ({ckpt.get('facegan_version')}); upgrade facegan")
    return ckpt


def load_checkpoint(path: str | Path, task: str | None = None, **options) -> dict:
    """Load and check a checkpoint: a file, a run folder, or a bundled model's name
    (:mod:`facegan.bundled`; a file or folder of that name comes first).

    ``task`` refuses one of another task; ``options`` are task options (``scale=4``,
    ``mask=...``, see :class:`facegan.engines.task.TaskOptions`): one the checkpoint's task
    does not take is refused, and the task checks the rest (a ×8 generator cannot upscale ×4).
    """
    from facegan.bundled import find_model, load_bundled
    from facegan.engines.task import TaskOptions
    from facegan.engines.tasks import refuse_options, task_class

    bundled = None if Path(path).exists() else find_model(str(path))
    if bundled is not None:
        ckpt = load_bundled(bundled)
        p = ckpt["path"]
    else:
        p = resolve_checkpoint(path)
        ckpt = read_checkpoint(p)
    if task is not None and ckpt.get("task") != task:
        raise FaceganError(f"{p} is a '{ckpt.get('task')}' checkpoint, not '{task}'")
    opts = TaskOptions(**options)
    cls = task_class(str(ckpt.get("task")))
    refuse_options(cls, opts, where=str(p))
    cls.check_checkpoint(ckpt, opts, p)
    ckpt["path"] = str(p)
    return ckpt


def describe_source(ckpt: dict) -> str:
    """Where a loaded checkpoint came from, in words (for "using ..." lines)."""
    if ckpt.get("bundled"):
        return f"the bundled model {ckpt['bundled']}"
    return str(ckpt.get("path"))


def newest_run_checkpoint(runs: Path, task: str, **options) -> Path:
    """checkpoints/last.pt of the most recently written run of ``task`` under ``runs`` that
    serves ``options`` (e.g. ``scale=2``: only ×2 runs)."""
    from facegan.engines.task import TaskOptions
    from facegan.engines.tasks import task_class

    cls, opts = task_class(task), TaskOptions(**options)
    found = []
    for last in runs.glob("*/checkpoints/last.pt"):
        try:
            info = read_checkpoint(last, mmap=True)
            if info.get("task") != task:
                continue
            cls.check_checkpoint(info, opts, last)
        except FaceganError:
            continue
        found.append((last.stat().st_mtime, last))
    if not found:
        what = f"'{task}' run" + cls.describe_options(opts)
        raise FaceganError(f"no {what} found in {runs}/; train one or pass --checkpoint FILE_OR_RUN")
    return max(found)[1]


def build_eval_generator(ckpt: dict, device: torch.device | str = "cpu", mirror: bool | None = None) -> torch.nn.Module:
    """The checkpoint's generator (EMA weights when present), in eval mode; wrapped in a
    :class:`~facegan.models.mirror.MirrorEnsemble` when its recipe asks for
    ``model.mirror_ensemble`` (``mirror`` True/False overrides the recipe)."""
    from facegan.engines.tasks import make_task
    from facegan.recipe import validate_recipe

    where = ckpt.get("path", "checkpoint")
    recipe = validate_recipe(ckpt.get("recipe"), source=f"{where} (stored recipe)")
    gen = make_task(recipe).build_generator()
    state = ckpt.get("ema") or ckpt.get("generator")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FaceganError(f"{where} holds no generator weights")
    if not all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point()):
        raise FaceganError(f"{where} holds non-finite generator weights (NaN or inf): it comes from a diverged run; "
                           "use an earlier checkpoint (checkpoints/step_*.pt)")
    try:
        gen.load_state_dict(state)
    except FaceganError as err:  # e.g. SR weights of another scale
        raise FaceganError(f"{ckpt.get('path')}: {err}") from None
    except RuntimeError as err:
        raise FaceganError(f"{ckpt.get('path')}: generator weights do not fit its recipe ({str(err).splitlines()[0]})") from None
    if recipe.model.mirror_ensemble if mirror is None else mirror:
        from facegan.models.mirror import MirrorEnsemble

        gen = MirrorEnsemble(gen)
    return gen.to(device).eval()
