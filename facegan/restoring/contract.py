"""The input contract of an exported restorer: the graph around the generator, and its words.

:class:`Contract` is the EMA generator wrapped with what `facegan restore` does around it,
through the task's own methods (:meth:`~facegan.tasks.base.Task.inference_batch` and
:meth:`~facegan.tasks.base.Task.run`):

* input ``face``: aligned faces, uint8 ``(N, s, s, 3)`` RGB in 0..255 (or, exported with
  ``float_input``, float32 in 0..1), s = the model's input size (``size / scale`` for
  super-resolution);
* input ``mask`` (inpainting only): ``(N, S, S)``, white = hole (uint8: > 127; float: >= 0.5);
* output ``restored``: float32 ``(N, S, S, 3)`` RGB in 0..1 (inpainting: the composite, the
  input kept outside the hole); output ``raw`` (inpainting only): the generator's whole output.

:func:`metadata` is what the exported file says about itself: the task, scale, size, template,
the recipe, the facegan version and this contract in words.
"""

from __future__ import annotations

import json

import torch
from torch import nn

from facegan.checkpoints.checkpoint import Checkpoint


class Contract(nn.Module):
    """The generator with the task's input and output conventions built in (see the module doc)."""

    def __init__(self, task, generator: nn.Module, float_input: bool = False, half: bool = False) -> None:
        super().__init__()
        self.task, self.generator, self.float_input, self.half = task, generator, float_input, half

    def forward(self, face: torch.Tensor, mask: torch.Tensor | None = None):
        x = face.permute(0, 3, 1, 2).float()
        x = x * 2.0 - 1.0 if self.float_input else x / 127.5 - 1.0
        hole = None
        if self.task.takes_hole:
            threshold = 0.5 if self.float_input else 127.5
            hole = (mask.float() > threshold).float()[:, None]
        if self.half:
            x = x.half()
            hole = hole.half() if hole is not None else None
        raw, result = self.task.run(self.generator, self.task.inference_batch(x, hole))
        restored = _to01(result)
        return (restored, _to01(raw)) if self.task.takes_hole else restored


def _to01(images: torch.Tensor) -> torch.Tensor:
    return ((images.float().clamp(-1.0, 1.0) + 1.0) * 0.5).permute(0, 2, 3, 1)


def input_names(task) -> list[str]:
    return ["face", "mask"] if task.takes_hole else ["face"]


def output_names(task) -> list[str]:
    return ["restored", "raw"] if task.takes_hole else ["restored"]


def metadata(ckpt: Checkpoint, task, float_input: bool, fp16: bool) -> dict[str, str]:
    """What the exported file says about itself (ONNX metadata_props; TorchScript extra file)."""
    from facegan import __version__

    s, S = task.input_size, task.size
    face = (f"float32 (N,{s},{s},3) RGB in 0..1" if float_input else f"uint8 (N,{s},{s},3) RGB in 0..255")
    contract = {"face": face + ", aligned on facegan's template (the 'template' entry)",
                "restored": f"float32 (N,{S},{S},3) RGB in 0..1"}
    if task.takes_hole:
        contract["mask"] = (f"float32 (N,{S},{S}) in 0..1, >= 0.5 = hole" if float_input
                            else f"uint8 (N,{S},{S}), > 127 (white) = hole")
        contract["raw"] = f"float32 (N,{S},{S},3) RGB in 0..1: the generator's whole output"
        contract["restored"] += ": generated pixels in the hole, the input elsewhere"
    return {
        "facegan_version": __version__,
        "task": task.name,
        "scale": json.dumps(task.scale),
        "size": str(task.size),
        "input_size": str(task.input_size),
        "template": json.dumps(ckpt.template),
        "recipe": json.dumps(ckpt.stored_recipe),
        "source": ckpt.bundled or ckpt.path,
        "step": json.dumps(ckpt.step),
        "fidelity": json.dumps(ckpt.fidelity),
        "precision": "fp16" if fp16 else "fp32",
        "input": "float32" if float_input else "uint8",
        "contract": json.dumps(contract),
    }
