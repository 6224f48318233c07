"""Which torch device a command runs on."""

from __future__ import annotations

import torch

from facegan.core.errors import FaceganError


def pick_device(name: str, local_rank: int = 0, option: str = "--device") -> torch.device:
    """auto (this process's GPU, else the CPU), cpu, cuda or cuda:N; a clear error without CUDA.
    ``option`` names the setting in messages (``train.device`` for a recipe, ``--device`` for a flag)."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise FaceganError(f"{option} {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        sep = "=" if "." in option else " "
        raise FaceganError(f"{option}{sep}{name} but no CUDA GPU is available; use {option}{sep}cpu or auto")
    return dev
