"""Super-resolution task: reduce a face by ``model.scale``, let the SRResNet bring it back.

Training inputs come from the packed high-resolution faces, degraded on the device per batch
(:mod:`facegan.data.degrade`: antialiased bicubic, optionally blur/noise/JPEG); evaluation
uses plain bicubic, deterministic. The generator's output is the result (no composite).

Task losses (weights from the recipe): ``rec`` = pixel MSE or L1 (``loss.pixel``,
``loss.pixel_type``), ``content`` = MSE of VGG19 features (``loss.content``, SRGAN's content
loss), ``tv`` = total variation (``loss.tv``). The adversarial and identity terms are the
shared loop's. The no-model reference scored beside the model is bicubic upscaling of the same
low-resolution input.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facegan.data import degrade
from facegan.engines.task import TaskBatch, Visual
from facegan.recipe import SRRecipe

#: (key, header, format) of the SR evaluation table; the JSON "metrics" keys are the same.
SR_COLUMNS = [
    ("psnr", "PSNR (dB)", "{:.2f}"),
    ("ssim", "SSIM", "{:.4f}"),
    ("psnr_y", "PSNR-Y (dB)", "{:.2f}"),
    ("ssim_y", "SSIM-Y", "{:.4f}"),
    ("id_cos", "identity cos", "{:.4f}"),
]


def tv_loss(images: torch.Tensor) -> torch.Tensor:
    """Total variation: mean squared difference of vertical neighbours plus that of horizontal ones."""
    dh = images[..., 1:, :] - images[..., :-1, :]
    dw = images[..., :, 1:] - images[..., :, :-1]
    return dh.pow(2).mean() + dw.pow(2).mean()


class SRTask:
    name = "sr"
    reference_name = "bicubic (no model)"
    #: Where eval's JSON also puts the reference metrics.
    reference_key = "bicubic"
    metric_columns = SR_COLUMNS

    def __init__(self, recipe: SRRecipe) -> None:
        self.recipe = recipe
        self.size = recipe.data.size
        self.scale: int = recipe.model.scale
        self.lr_size = self.size // self.scale
        self.perceptual: nn.Module | None = None

    # -- models -------------------------------------------------------------------------
    def build_generator(self) -> nn.Module:
        from facegan.models.srresnet import SRResNet

        m = self.recipe.model
        return SRResNet(self.scale, m.width, m.num_blocks)

    def build_discriminator(self) -> nn.Module:
        from facegan.models.srresnet import SRDiscriminator

        m = self.recipe.model
        return SRDiscriminator(m.d_width, m.d_head)

    def prepare_training(self, device: torch.device) -> None:
        """Load the frozen loss networks the recipe needs (VGG19 when ``loss.content`` > 0)."""
        loss = self.recipe.loss
        if loss.content > 0 and self.perceptual is None:
            from facegan.models.perceptual import load_perceptual_loss

            self.perceptual = load_perceptual_loss(loss.content_layer, loss.vgg_weights, device=device)

    # -- batches ------------------------------------------------------------------------
    def with_lr(self, hr: torch.Tensor, lr: torch.Tensor) -> TaskBatch:
        return TaskBatch(target=hr, inputs=(lr,))

    def train_batch(self, images: torch.Tensor, landmarks: torch.Tensor, generator: torch.Generator) -> TaskBatch:
        """HR faces -> LR inputs with the recipe's degradation, drawn from this step's generator."""
        return self.with_lr(images, degrade.degrade(images, self.scale, self.recipe.data.degradation, generator))

    def eval_batch(self, images: torch.Tensor, landmarks: torch.Tensor, indices=None, mask_spec=None, seed: int = 0) -> TaskBatch:
        """Deterministic: plain antialiased bicubic, 8-bit (``mask_spec`` and ``seed`` are unused)."""
        return self.with_lr(images, degrade.bicubic_lr(images, self.scale))

    # -- forward and losses -------------------------------------------------------------
    def run(self, generator: nn.Module, batch: TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw generator output, result): the same image for SR."""
        raw = generator(*batch.inputs)
        return raw, raw.float()

    def losses(self, raw: torch.Tensor, result: torch.Tensor, batch: TaskBatch) -> dict[str, torch.Tensor]:
        loss = self.recipe.loss
        pixel = F.mse_loss if loss.pixel_type == "mse" else F.l1_loss
        terms = {"rec": pixel(result, batch.target), "tv": tv_loss(result)}
        if self.perceptual is not None:
            terms["content"] = self.perceptual(result, batch.target)
        return terms

    def loss_weights(self) -> dict[str, float]:
        loss = self.recipe.loss
        return {"rec": loss.pixel, "content": loss.content, "tv": loss.tv}

    def reference(self, batch: TaskBatch) -> torch.Tensor:
        """What a user has without the model (scored beside it by eval): bicubic upscaling."""
        return degrade.upscale_bicubic(batch.inputs[0], self.scale)

    def visuals(self, batch: TaskBatch, raw: torch.Tensor, result: torch.Tensor) -> list[Visual]:
        lr = batch.inputs[0]
        return [
            Visual("ground truth", batch.target),
            Visual(f"input x{self.scale} (nearest)", degrade.upscale_nearest(lr, self.scale)),
            Visual("bicubic", self.reference(batch)),
            Visual("output", result.clamp(-1, 1)),
        ]

    # -- evaluation ---------------------------------------------------------------------
    def score(self, out_u8: np.ndarray, gt_u8: np.ndarray, batch: TaskBatch) -> dict[str, np.ndarray]:
        """Per-image PSNR/SSIM on RGB and on MATLAB Y, ``scale`` pixels cropped per border (DESIGN §4)."""
        from facegan import metrics

        c = self.scale
        return {
            "psnr": metrics.psnr(out_u8, gt_u8, crop_border=c),
            "ssim": metrics.ssim(out_u8, gt_u8, crop_border=c),
            "psnr_y": metrics.psnr(out_u8, gt_u8, crop_border=c, y_channel=True),
            "ssim_y": metrics.ssim(out_u8, gt_u8, crop_border=c, y_channel=True),
        }
