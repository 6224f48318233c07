"""Checkpoints (DESIGN §6): one file per save, written atomically, self-sufficient.

A checkpoint holds the generator, discriminator, both optimizers and schedulers, the EMA
generator, the step, the fully resolved recipe, the task (and SR scale), the aligned-face
template, the facegan version and format version. ``eval`` and ``restore`` need nothing else.
It is loaded with ``weights_only=True``: a checkpoint never executes code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from facegan.errors import FaceganError

FORMAT = "facegan-checkpoint"
FORMAT_VERSION = 1


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save to a temp file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run folder (-> its checkpoints/last.pt)."""
    p = Path(path)
    if p.is_dir():
        last = p / "checkpoints" / "last.pt"
        if not last.is_file():
            raise FaceganError(f"{p} has no checkpoints/last.pt; is it a finished `facegan train` run?")
        return last
    if not p.is_file():
        raise FaceganError(f"checkpoint {p} not found")
    return p


def load_checkpoint(path: str | Path, task: str | None = None, scale: int | None = None) -> dict:
    """Load and check a checkpoint; ``task`` refuses one of another task, ``scale`` one of another
    super-resolution factor (a ×8 generator cannot upscale ×4)."""
    p = resolve_checkpoint(path)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated file, not a torch file, pickled code...
        raise FaceganError(f"{p} is not a readable facegan checkpoint ({type(err).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise FaceganError(f"{p} is not a facegan checkpoint")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise FaceganError(f"{p} was written by a newer facegan ({ckpt.get('facegan_version')}); upgrade facegan")
    if task is not None and ckpt.get("task") != task:
        raise FaceganError(f"{p} is a '{ckpt.get('task')}' checkpoint, not '{task}'")
    if scale is not None:
        check_scale(ckpt, scale, p)
    ckpt["path"] = str(p)
    return ckpt


def check_scale(ckpt: dict, scale: int, path: str | Path | None = None) -> None:
    """FaceganError unless ``ckpt`` is a super-resolution checkpoint of factor ``scale``."""
    where = path or ckpt.get("path", "checkpoint")
    theirs = ckpt.get("scale")
    if theirs is None:
        raise FaceganError(f"{where} is a '{ckpt.get('task')}' checkpoint; a scale (--scale {scale}) is only for 'sr' checkpoints")
    if int(theirs) != int(scale):
        raise FaceganError(
            f"{where} is a ×{theirs} checkpoint; it cannot upscale ×{scale} (use a ×{scale} run, or --scale {theirs})"
        )


def newest_run_checkpoint(runs: Path, task: str, scale: int | None = None) -> Path:
    """checkpoints/last.pt of the most recently written run of ``task`` (and SR ``scale``) under ``runs``."""
    found = []
    for last in runs.glob("*/checkpoints/last.pt"):
        try:
            info = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
        except Exception:
            continue
        if isinstance(info, dict) and info.get("format") == FORMAT and info.get("task") == task:
            if scale is None or info.get("scale") == scale:
                found.append((last.stat().st_mtime, last))
    if not found:
        what = f"'{task}' run" + (f" of scale ×{scale}" if scale is not None else "")
        raise FaceganError(f"no {what} found in {runs}/; train one or pass --checkpoint FILE_OR_RUN")
    return max(found)[1]


def build_eval_generator(ckpt: dict, device: torch.device | str = "cpu") -> torch.nn.Module:
    """The checkpoint's generator (EMA weights when present), in eval mode."""
    from facegan.engines.tasks import make_task
    from facegan.recipe import validate_recipe

    recipe = validate_recipe(ckpt["recipe"], source=f"{ckpt.get('path', 'checkpoint')} (stored recipe)")
    gen = make_task(recipe).build_generator()
    state = ckpt.get("ema") or ckpt["generator"]
    try:
        gen.load_state_dict(state)
    except FaceganError as err:  # e.g. SR weights of another scale
        raise FaceganError(f"{ckpt.get('path')}: {err}") from None
    except RuntimeError as err:
        raise FaceganError(f"{ckpt.get('path')}: generator weights do not fit its recipe ({str(err).splitlines()[0]})") from None
    return gen.to(device).eval()
