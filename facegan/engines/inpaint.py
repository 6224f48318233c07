"""Inpainting task: occlude a face, fill the hole, composite into the known pixels.

Generator input: the image with the hole set to 0 (mid-grey in [-1, 1]) plus the mask.
The result the user sees (and the discriminator, the identity loss and the metrics) is the
*composite* ``output * mask + input * (1 - mask)``: known pixels are never altered.
Reconstruction loss: L1 over the hole only, normalised by the hole's area (so small and large
holes weigh the same per pixel).
"""

from __future__ import annotations

import torch
from torch import nn

from facegan.data import masks as masklib
from facegan.engines.task import TaskBatch, Visual
from facegan.recipe import Recipe


def composite(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Generated pixels inside the hole, original pixels outside."""
    return output * mask + target * (1 - mask)


def hole_l1_loss(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over hole pixels (all channels), normalised by the hole area."""
    err = (output - target).abs() * mask
    return err.sum() / (mask.sum() * output.shape[1]).clamp_min(1.0)


class InpaintTask:
    name = "inpaint"
    scale = None

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.size = recipe.data.size

    # -- models -------------------------------------------------------------------------
    def build_generator(self) -> nn.Module:
        m = self.recipe.model
        if m.generator == "unet":
            from facegan.models.unet import FaceUNet

            return FaceUNet(self.size, m.width, m.gated)
        from facegan.models.context_encoder import ContextEncoder

        return ContextEncoder(self.size, m.width, m.bottleneck)

    def build_discriminator(self) -> nn.Module:
        from facegan.models.patchgan import PatchGAN

        m = self.recipe.model
        return PatchGAN(3, m.d_width, m.d_layers)

    # -- batches ------------------------------------------------------------------------
    def with_mask(self, images: torch.Tensor, mask: torch.Tensor) -> TaskBatch:
        mask = mask.to(images.device, images.dtype)
        masked = images * (1 - mask)
        return TaskBatch(target=images, inputs=(masked, mask), mask=mask)

    def train_batch(self, images: torch.Tensor, landmarks: torch.Tensor, generator: torch.Generator) -> TaskBatch:
        mask = masklib.make_mixed_masks(
            self.recipe.data.masks, images.shape[0], self.size, landmarks=landmarks, generator=generator, device=images.device
        )
        return self.with_mask(images, mask)

    def eval_batch(self, images: torch.Tensor, landmarks: torch.Tensor, indices, mask_spec, seed: int) -> TaskBatch:
        """Deterministic masks: image i's hole depends only on (mask, i, seed)."""
        if isinstance(mask_spec, str):
            mask = masklib.eval_masks(mask_spec, [int(i) for i in indices], self.size, landmarks=landmarks.cpu(), seed=seed)
        else:  # a mask tensor loaded from a file, shared by every image
            mask = mask_spec.expand(images.shape[0], -1, -1, -1)
        return self.with_mask(images, mask)

    # -- forward and losses -------------------------------------------------------------
    def run(self, generator: nn.Module, batch: TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw generator output, composite result)."""
        raw = generator(*batch.inputs)
        return raw, composite(raw.float(), batch.target, batch.mask)

    def losses(self, raw: torch.Tensor, result: torch.Tensor, batch: TaskBatch) -> dict[str, torch.Tensor]:
        return {"rec": hole_l1_loss(raw.float(), batch.target, batch.mask)}

    def loss_weights(self) -> dict[str, float]:
        return {"rec": self.recipe.loss.reconstruction}

    reference_name = "grey hole (no model)"

    def reference(self, batch: TaskBatch) -> torch.Tensor:
        """What a user has without the model (scored beside it by eval): the hole left mid-grey."""
        return batch.inputs[0]

    def visuals(self, batch: TaskBatch, raw: torch.Tensor, result: torch.Tensor) -> list[Visual]:
        shown = batch.inputs[0] + batch.mask * torch.tensor([0.6, 0.6, 0.6], device=result.device).view(1, 3, 1, 1)
        return [
            Visual("ground truth", batch.target),
            Visual("masked input", shown.clamp(-1, 1)),
            Visual("output", raw.float().clamp(-1, 1)),
            Visual("composite", result.clamp(-1, 1)),
        ]
