"""Super-resolution: reduce a face by ``model.scale``, let the SRResNet bring it back.

Training inputs come from the packed high-resolution faces, degraded on the device per batch
(:mod:`facegan.data.degrade`: antialiased bicubic, optionally blur/noise/JPEG); evaluation
uses plain bicubic, deterministic. The generator's output is the result (no composite).

Task losses (weights from the recipe): ``rec`` = pixel MSE or L1 (``loss.pixel``,
``loss.pixel_type``), ``content`` = MSE of VGG19 features (``loss.content``, SRGAN's content
loss), ``tv`` = total variation (``loss.tv``). The adversarial and identity terms are the
shared loop's. The no-model reference scored beside the model is bicubic upscaling of the same
low-resolution input. Scores crop ``scale`` pixels per border and add PSNR/SSIM on MATLAB's Y.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import nn

from facegan.data import degrade
from facegan.metrics.info import DETAIL, PSNR, PSNR_Y, SSIM, SSIM_Y, MetricInfo
from facegan.tasks.base import EvalSettings, PeerModels, Reference, Task, TaskBatch, TaskOptions, Visual
from facegan.tasks.option_rules import OptionRule
from facegan.tasks.paste import PasteRule
from facegan.tasks.pictures import Column, Panel
from facegan.tasks.schema import DataConfig, LossConfig, ModelConfig, RecipeBase, Section, ordered_range

# --------------------------------------------------------------------------------------------
# Recipe schema
# --------------------------------------------------------------------------------------------


class DegradationConfig(Section):
    """How training faces are degraded into low-resolution inputs (sr); evaluation always uses plain bicubic."""

    blur_sigma: tuple[float, float] = (0.0, 0.0)
    """Range [low, high] of the Gaussian blur sigma (high-resolution pixels) applied before the bicubic downscale, drawn per image; [0, 0] = no blur (plain bicubic)."""
    noise_std: tuple[float, float] = (0.0, 0.0)
    """Range [low, high] of the std of Gaussian noise added to the low-resolution image, on the 0..255 scale, drawn per image; [0, 0] = no noise."""
    jpeg_quality: tuple[int, int] | None = None
    """Range [low, high] of the JPEG quality (1..100) the low-resolution image is compressed with, drawn per image; null = no JPEG."""

    @field_validator("blur_sigma", "noise_std")
    @classmethod
    def _non_negative(cls, v: tuple[float, float]) -> tuple[float, float]:
        if min(v) < 0:
            raise ValueError(f"must be >= 0, got [{v[0]}, {v[1]}]")
        return ordered_range(v)

    @field_validator("jpeg_quality")
    @classmethod
    def _quality(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is None:
            return v
        if min(v) < 1 or max(v) > 100:
            raise ValueError(f"JPEG quality must be within 1..100, got [{v[0]}, {v[1]}]")
        return ordered_range(v)


#: Channels of the shipped SPAN weights (facegan.models.span).
SPAN_WIDTH = 52


class SRDataConfig(DataConfig):
    degradation: DegradationConfig = DegradationConfig()


class SRModelConfig(ModelConfig):
    generator: Literal["srresnet", "span", "span_cascade"] = "srresnet"
    """Generator architecture (sr): srresnet (the SRGAN generator), span (SPAN, Wan et al. 2024, a small generic SR network; model.width is its channels, 52 for the shipped weights) or span_cascade (SPAN passes in a row trained as one: x8 is SPAN x4 then SPAN x2)."""
    pretrained: bool = False
    """span and span_cascade: start from the shipped generic SPAN weights (span: x2, x4, and x8 takes the x4 weights for everything but its upsampler; span_cascade: every pass its own scale's weights). Needs model.width=52."""
    scale: Literal[2, 4, 8] = 4
    """Upscaling factor: the low-resolution input is data.size / scale pixels wide. Stored in checkpoints; a checkpoint only upscales by its own scale."""
    num_blocks: int = Field(5, ge=1, le=64)
    """Residual blocks of the SRResNet (5 in the source design, 16 in the SRGAN paper)."""
    width: int = Field(64, ge=4, le=256)
    """Channels of the SRResNet's body (64 in SRGAN)."""
    icnr: bool = False
    """Start each PixelShuffle stage's conv as ICNR (Aitken et al. 2017): its four sub-pixel filters equal, i.e. a nearest-neighbour 2x resize then a conv, so training starts with no checkerboard (docs/models.md)."""
    discriminator: Literal["vgg", "patchgan"] = "vgg"
    """Discriminator architecture (sr): vgg (SRGAN's 8-conv VGG-style network with a 1x1-conv head, one logit per image) or patchgan (a logit per patch, model.d_layers; it judges local detail, the GAN fine-tunes use it)."""
    d_layers: int = Field(3, ge=1, le=5)
    """patchgan only: its stride-2 layers (3 gives 70x70 patches)."""
    d_spectral_norm: bool = False
    """patchgan only: spectral normalisation on every conv instead of batch norm (Miyato et al. 2018; a Lipschitz discriminator that stays informative when it wins)."""
    d_width: int = Field(64, ge=4, le=256)
    """Channels of the discriminator's first conv; they double every other layer (64 -> 512 in SRGAN)."""
    d_head: int = Field(1024, ge=4, le=4096)
    """Channels of the discriminator's hidden 1x1 conv after pooling (1024 in SRGAN)."""

    @model_validator(mode="after")
    def _pretrained_span(self):
        if self.pretrained and self.generator not in ("span", "span_cascade"):
            raise ValueError("model.pretrained is for generator: span or span_cascade (shipped SPAN weights)")
        if self.pretrained and self.width != SPAN_WIDTH:
            raise ValueError(f"the shipped SPAN weights have {SPAN_WIDTH} channels: set model.width={SPAN_WIDTH}")
        return self


class SRLossConfig(LossConfig):
    adversarial: float = Field(0.001, ge=0)
    """Weight of the adversarial loss (loss.adversarial_loss); 0.001 in SRGAN."""
    identity: float = Field(0.006, ge=0)
    """Weight of the identity loss 1 - cos(embed(output), embed(ground truth)); 0 turns it off (0.006: the source's best visual quality, 0.6: its best identity similarity)."""
    pixel: float = Field(1.0, ge=0)
    """Weight of the pixel loss between output and ground truth (loss.pixel_type; on [-1, 1] images)."""
    pixel_type: Literal["mse", "l1"] = "mse"
    """Pixel loss: mse (SRGAN / SRResNet) or l1."""
    content: float = Field(0.006, ge=0)
    """Weight of the content loss: MSE of VGG19 features (loss.content_layer) of output and ground truth, SRGAN's naming; 0 turns it off (and needs no VGG19 weights)."""
    content_layer: str = "conv5_4"
    """VGG19 layer of the content loss, torchvision naming: convB_I (before the ReLU, as in SRGAN) or reluB_I, e.g. conv5_4, relu2_2."""
    tv: float = Field(2e-8, ge=0)
    """Weight of the total-variation loss: mean squared difference of vertically plus horizontally adjacent output pixels (2e-8 in the source)."""
    vgg_weights: str | None = None
    """Local path of torchvision's VGG19 ImageNet weights (vgg19-dcbb9e9d.pth) for the content loss; else $FACEGAN_WEIGHTS_VGG19, the torch hub cache, or a one-time download."""

    @field_validator("content_layer")
    @classmethod
    def _layer(cls, v: str) -> str:
        from facegan.models.vgg import VGG19_LAYERS

        if v not in VGG19_LAYERS or v.startswith("pool"):
            raise ValueError(f"unknown VGG19 layer {v!r}; expected convB_I or reluB_I, e.g. conv5_4, relu5_4, conv2_2")
        return v


class SRRecipe(RecipeBase):
    task: Literal["sr"]
    """Task engine: inpaint (occluded faces) or sr (super-resolution ×2/×4/×8); it decides which model and loss keys exist."""
    data: SRDataConfig = SRDataConfig()
    model: SRModelConfig = SRModelConfig()
    loss: SRLossConfig = SRLossConfig()


# --------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------


def tv_loss(images: torch.Tensor) -> torch.Tensor:
    """Total variation: mean squared difference of vertical neighbours plus that of horizontal ones."""
    dh = images[..., 1:, :] - images[..., :-1, :]
    dw = images[..., :, 1:] - images[..., :, :-1]
    return dh.pow(2).mean() + dw.pow(2).mean()


class SRTask(Task):
    name: ClassVar[str] = "sr"
    noun: ClassVar[str] = "super-resolution"
    recipe_type: ClassVar[type] = SRRecipe
    #: A checkpoint only upscales by the scale it was trained at (and is only resumed at it).
    options: ClassVar[dict[str, OptionRule]] = {
        "scale": OptionRule(checkpoint_field="scale", recipe_key="model.scale", shown="×{}", verb="upscale"),
    }
    takes_hole: ClassVar[bool] = False
    references: ClassVar[tuple[Reference, ...]] = (
        Reference("bicubic", "bicubic (no model)"),
        Reference("span", "SPAN, generic SR (peer)"),
        Reference("realesrgan", "Real-ESRGAN x4plus, GAN (peer)", requires="ncnn", opt_in=True),
    )
    metric_columns: ClassVar[tuple[MetricInfo, ...]] = (PSNR, SSIM, PSNR_Y, SSIM_Y, DETAIL)
    progress_terms: ClassVar[tuple[str, ...]] = ("rec", "content")
    #: The whole face is taken from the model, a seam of 1/8 of the model's size inside its
    #: border hiding the change from the bicubic photo; hard-edged when the photo is the
    #: aligned face itself.
    paste_rule: ClassVar[PasteRule] = PasteRule("face", feather=1 / 8, hard_when_aligned=True)
    face_columns: ClassVar[tuple[Column, ...]] = (
        Column("face input", "input"), Column("bicubic", "bicubic"), Column("restored", "restored"),
    )
    photo_row: ClassVar[tuple[Panel, ...]] = (Panel("input (bicubic x{scale})", "canvas"), Panel("restored", "restored"))

    def __init__(self, recipe: SRRecipe) -> None:
        super().__init__(recipe)
        self._scale: int = recipe.model.scale
        self.perceptual: nn.Module | None = None

    @property
    def scale(self) -> int:
        return self._scale

    # ---- models -----------------------------------------------------------------------------

    def build_generator(self) -> nn.Module:
        m = self.recipe.model
        if m.generator == "span":
            from facegan.models.span import SPAN, load_pretrained_into

            span = SPAN(self.scale, m.width)
            return load_pretrained_into(span) if m.pretrained else span
        if m.generator == "span_cascade":
            from facegan.models.span import SPANCascade, load_pretrained_cascade

            cascade = SPANCascade(self.scale, m.width)
            return load_pretrained_cascade(cascade) if m.pretrained else cascade
        from facegan.models.srresnet import SRResNet

        return SRResNet(self.scale, m.width, m.num_blocks, icnr=m.icnr)

    def build_discriminator(self) -> nn.Module:
        m = self.recipe.model
        if m.discriminator == "patchgan":
            from facegan.models.patchgan import PatchGAN

            return PatchGAN(3, m.d_width, m.d_layers, spectral_norm=m.d_spectral_norm)
        from facegan.models.srresnet import SRDiscriminator

        return SRDiscriminator(m.d_width, m.d_head)

    def prepare_training(self, device: torch.device) -> None:
        """Load the frozen loss networks the recipe needs (VGG19 when ``loss.content`` > 0)."""
        loss = self.recipe.loss
        if loss.content > 0 and self.perceptual is None:
            from facegan.models.perceptual import load_perceptual_loss

            self.perceptual = load_perceptual_loss(loss.content_layer, loss.vgg_weights, device=device)

    # ---- batches ----------------------------------------------------------------------------

    def train_batch(self, images: torch.Tensor, landmarks: torch.Tensor, generator: torch.Generator) -> TaskBatch:
        """HR faces -> LR inputs with the recipe's degradation, drawn from this step's generator."""
        return TaskBatch(target=images, inputs=(degrade.degrade(images, self.scale, self.recipe.data.degradation, generator),))

    def eval_settings(self, options: TaskOptions = TaskOptions(), size: int | None = None) -> EvalSettings:
        s = (size or self.size) // self.scale
        return EvalSettings(label=f"x{self.scale}", caption=f"x{self.scale} bicubic input ({s} px)",
                            summary={"scale": self.scale})

    def eval_batch(self, images: torch.Tensor, landmarks: torch.Tensor, indices, settings: EvalSettings) -> TaskBatch:
        """Deterministic: plain antialiased bicubic, 8-bit."""
        return TaskBatch(target=images, inputs=(degrade.bicubic_lr(images, self.scale),))

    def inference_batch(self, faces: torch.Tensor, hole: torch.Tensor | None) -> TaskBatch:
        return TaskBatch(target=None, inputs=(faces,))

    # ---- forward and losses -----------------------------------------------------------------

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

    # ---- evaluation -------------------------------------------------------------------------

    def reference_outputs(self, batch: TaskBatch, keys: tuple[str, ...],
                          peers: PeerModels | None = None) -> dict[str, torch.Tensor]:
        """Bicubic upscaling of the same low-resolution input, the generic peer SPAN
        (:func:`facegan.models.span.span_upscale`; x8: x4 then x2) and, when ``peers`` names its
        files, the GAN peer Real-ESRGAN (:func:`facegan.models.realesrgan.realesrgan_upscale`)."""
        from facegan.models.realesrgan import realesrgan_upscale
        from facegan.models.span import span_upscale

        lr = batch.inputs[0]
        rows = {"bicubic": lambda: degrade.upscale_bicubic(lr, self.scale), "span": lambda: span_upscale(lr, self.scale),
                "realesrgan": lambda: realesrgan_upscale(lr, self.scale, peers.realesrgan)}
        return {key: rows[key]() for key in keys}

    def score(self, out_u8: np.ndarray, gt_u8: np.ndarray, batch: TaskBatch) -> dict[str, np.ndarray]:
        """Per-image PSNR/SSIM on RGB and on MATLAB Y, ``scale`` pixels cropped per border, and
        the detail over the face less an 8 px border (docs/design.md)."""
        from facegan.metrics import quality as metrics
        from facegan.metrics import realism

        c = self.scale
        return {
            "psnr": metrics.psnr(out_u8, gt_u8, crop_border=c),
            "ssim": metrics.ssim(out_u8, gt_u8, crop_border=c),
            "psnr_y": metrics.psnr(out_u8, gt_u8, crop_border=c, y_channel=True),
            "ssim_y": metrics.ssim(out_u8, gt_u8, crop_border=c, y_channel=True),
            "detail": realism.detail(out_u8, gt_u8, realism.inner_face(len(out_u8), out_u8.shape[1])),
        }

    # ---- pictures ---------------------------------------------------------------------------

    def visuals(self, batch: TaskBatch, raw: torch.Tensor, result: torch.Tensor) -> list[Visual]:
        lr = batch.inputs[0]
        return [
            Visual("ground truth", batch.target),
            Visual(f"input x{self.scale} (nearest)", degrade.upscale_nearest(lr, self.scale)),
            Visual("bicubic", self.reference_outputs(batch, ("bicubic",))["bicubic"]),
            Visual("output", result.clamp(-1, 1)),
        ]
