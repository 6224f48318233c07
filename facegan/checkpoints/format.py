"""The checkpoint file (docs/design.md, "Checkpoints"): one file per save, written atomically, self-sufficient.

A checkpoint file holds the generator, discriminator, both optimizers and schedulers, the EMA
generator, the step, the fully resolved recipe, the task (and SR scale), the aligned-face
template, the facegan version and format version. It is read with ``weights_only=True``: a
checkpoint never executes code. What eval, restore and export see of it is a typed
:class:`facegan.checkpoints.checkpoint.Checkpoint`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from facegan.core.atomic import atomic_write
from facegan.core.errors import FaceganError

FORMAT = "facegan-checkpoint"
FORMAT_VERSION = 1


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save through :func:`facegan.core.atomic.atomic_write`: a reader sees the old file or
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
