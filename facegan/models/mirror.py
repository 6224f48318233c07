"""Mirror self-ensemble: run a generator on the faces and on their mirror images, average.

An aligned face is close to left-right symmetric, and its mirror image is a face the generator
was trained on too (training flips half the faces). Its error on the mirrored input is partly
independent of its error on the face itself, so the mean of the two outputs (the second flipped
back) is closer to the truth than either (docs/models.md has the measurements). It costs a
second forward pass and changes no weight. On inpainting it lowered the judge's cosine, and on
SR it raised the outputs' period-2 spectral peak, so the bundled models do not use it by default. Only the
horizontal mirror is used: the other flips and rotations of image-restoration self-ensembles
(Lim et al. 2017, EDSR+) turn a face upside down, which the generator never saw.

Every input is flipped: the masked face and its hole for inpainting, the small face for
super-resolution. The recipe key ``model.mirror_ensemble`` turns it on for evaluation,
``restore`` and ``export`` (:meth:`facegan.checkpoints.checkpoint.Checkpoint.build_generator`);
training and its sample grids always run the single generator.
"""

from __future__ import annotations

import torch
from torch import nn


class MirrorEnsemble(nn.Module):
    """``(g(x) + mirror(g(mirror(x)))) / 2`` for a generator ``g`` of image tensors (..., H, W)."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        out = self.generator(*inputs)
        mirrored = self.generator(*(x.flip(-1) for x in inputs)).flip(-1)
        return (out + mirrored) * 0.5
