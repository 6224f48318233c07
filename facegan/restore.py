"""Restoring faces with a trained generator: :class:`Restorer`.

A :class:`Restorer` wraps a checkpoint's EMA generator and works on *aligned* faces at the
model's resolution (uint8 arrays in, uint8 arrays out): :meth:`Restorer.inpaint` fills holes,
:meth:`Restorer.upscale` super-resolves. `facegan restore` (:mod:`facegan.photo`) finds,
aligns and pastes faces back around it, for aligned crops (``--aligned``) and whole photos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facegan.errors import FaceganError


def find_checkpoint(checkpoint: str | Path | None, task: str, runs_dir: Path, console=None,
                    scale: int | None = None) -> dict:
    """Load ``checkpoint`` (file or run folder), or the newest run of ``task`` in ``runs_dir``.

    ``scale`` (sr) picks the newest run of that scale, and refuses a checkpoint of another one.
    """
    from facegan.engines.checkpoint import load_checkpoint, newest_run_checkpoint

    if checkpoint is None:
        path = newest_run_checkpoint(runs_dir, task, scale)
        if console is not None:
            console.print(f"using the newest {task} run: {path.parent.parent} (pass --checkpoint to choose)")
        checkpoint = path
    return load_checkpoint(checkpoint, task=task, scale=scale)


class Restorer:
    """A checkpoint's generator (EMA weights) applied to aligned faces."""

    def __init__(self, ckpt: dict, device: str | torch.device = "auto") -> None:
        from facegan.engines.checkpoint import build_eval_generator
        from facegan.engines.runtime import pick_device

        self.ckpt = ckpt
        self.task = ckpt["task"]
        self.size = int(ckpt["size"])
        self.scale = ckpt.get("scale")
        points = (ckpt.get("template") or {}).get("points")
        self.template = np.asarray(points, dtype=np.float64) if points else None
        self.device = pick_device(str(device))
        self.gen = build_eval_generator(ckpt, self.device)

    @classmethod
    def find(cls, task: str, checkpoint: str | Path | None = None, runs_dir: str | Path = "runs",
             device: str = "auto", console=None, scale: int | None = None) -> "Restorer":
        """The checkpoint (or newest run of ``task``, and of ``scale`` for sr) as a Restorer."""
        return cls(find_checkpoint(checkpoint, task, Path(runs_dir), console, scale), device)

    @property
    def input_size(self) -> int:
        """Side of the faces the generator takes: the model's size, or size / scale for sr."""
        return self.size // int(self.scale) if self.scale else self.size

    def template_landmarks(self, n: int = 1) -> torch.Tensor:
        """(n,5,2) template landmarks at the model's size (an aligned face's landmarks)."""
        from facegan.geometry import template_points

        pts = torch.tensor(template_points(self.size, self.template), dtype=torch.float32)
        return pts[None].expand(n, -1, -1).clone()

    def named_masks(self, kind: str, landmarks: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
        """Canonical ``kind`` masks (n,1,S,S) placed from ``landmarks`` (default: the template)."""
        from facegan.data.masks import eval_masks

        lms = self.template_landmarks() if landmarks is None else landmarks
        return eval_masks(kind, list(range(len(lms))), self.size, landmarks=lms.cpu(), seed=seed)

    @torch.no_grad()
    def inpaint(self, faces: np.ndarray, masks: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Fill the holes of aligned faces.

        ``faces``: (N,S,S,3) uint8 at the model's size; ``masks``: (N,1,S,S), 1 = hole.
        Returns (raw generator output, composite), both (N,S,S,3) uint8.
        """
        from facegan.data.loader import to_model_range
        from facegan.metrics import to_uint8

        if self.task != "inpaint":
            raise FaceganError(f"{self.ckpt.get('path')} is a '{self.task}' checkpoint, not 'inpaint'")
        if faces.shape[1:3] != (self.size, self.size):
            raise ValueError(f"faces must be {self.size}x{self.size}, got {faces.shape[1:3]}")
        x = to_model_range(torch.from_numpy(np.array(faces, dtype=np.uint8)).to(self.device))
        m = masks.to(self.device, torch.float32)
        raw = self.gen(x * (1 - m), m).float().clamp(-1, 1)
        return to_uint8(raw), to_uint8(raw * m + x * (1 - m))

    @torch.no_grad()
    def upscale(self, faces: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """Super-resolve aligned low-resolution faces.

        ``faces``: (N,s,s,3) uint8 with s = size / scale (:attr:`input_size`), aligned on the
        model's template. Returns (N,size,size,3) uint8.
        """
        from facegan.data.loader import to_model_range
        from facegan.metrics import to_uint8

        if self.task != "sr":
            raise FaceganError(f"{self.ckpt.get('path')} is a '{self.task}' checkpoint, not 'sr'")
        faces = np.asarray(faces)
        s = self.input_size
        if faces.ndim != 4 or faces.shape[1:] != (s, s, 3):
            raise ValueError(f"faces must be (N,{s},{s},3) uint8 for this x{self.scale} model, got {faces.shape}")
        out = []
        for start in range(0, len(faces), batch_size):
            chunk = np.array(faces[start : start + batch_size], dtype=np.uint8)
            x = to_model_range(torch.from_numpy(chunk).to(self.device))
            out.append(to_uint8(self.gen(x).float().clamp(-1, 1)))
        return np.concatenate(out) if out else np.zeros((0, self.size, self.size, 3), np.uint8)
