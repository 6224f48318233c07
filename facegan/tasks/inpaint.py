"""Inpainting: occlude a face, fill the hole, composite into the known pixels.

Generator input: the image with the hole set to 0 (mid-grey in [-1, 1]) plus the mask
(1 = hole). The result the user sees (and the discriminator, the identity loss and the
metrics) is the *composite* ``output * mask + input * (1 - mask)``: known pixels are never
altered. Reconstruction loss: L1 over the hole only, normalised by the hole's area (so small
and large holes weigh the same per pixel).

Training holes are drawn per image from ``data.masks`` (:mod:`facegan.data.masks`, placed
from each face's landmarks); evaluation holes are deterministic: image i's hole depends only
on (mask type, i, seed). Two no-model references are scored beside the model: the hole left
mid-grey, and scikit-image's biharmonic inpainting (``inpaint_biharmonic``), a classical
fill that any model should beat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import nn

from facegan.data import masks as masklib
from facegan.metrics.info import DETAIL, HOLE_L1, HOLE_PSNR, PSNR, SSIM, MetricInfo
from facegan.tasks import opencv_fills
from facegan.tasks.base import EvalSettings, PeerModels, Reference, Task, TaskBatch, TaskOptions, Visual
from facegan.tasks.option_rules import OptionRule
from facegan.tasks.paste import PasteRule
from facegan.tasks.pictures import Column, Panel
from facegan.tasks.schema import DataConfig, EvalConfig, LossConfig, ModelConfig, RecipeBase

# --------------------------------------------------------------------------------------------
# Recipe schema
# --------------------------------------------------------------------------------------------


class InpaintDataConfig(DataConfig):
    masks: list[str] = ["center", "eyes", "mouth", "box", "freeform"]
    """Training occlusions; each image gets one, chosen at random: center, half, eyes, mouth, box, freeform, glasses, facemask."""

    @field_validator("masks")
    @classmethod
    def _masks(cls, v: list[str]) -> list[str]:
        bad = [m for m in v if m not in masklib.MASK_TYPES]
        if bad or not v:
            raise ValueError(f"unknown mask type(s) {bad or '[]'}; expected a non-empty list of {', '.join(masklib.MASK_TYPES)}")
        return v


class InpaintModelConfig(ModelConfig):
    generator: Literal["context_encoder", "unet"] = "context_encoder"
    """Generator architecture: context_encoder (the source design: encoder, 8x8 code, transposed-convolution decoder) or unet (skips at every scale, dilated middle, resize-convolution decoder; see docs/models.md)."""
    width: int = Field(64, ge=4, le=256)
    """Channels of the generator's first layer; they double per level (64 -> 512 in the source design)."""
    bottleneck: Literal["channel_fc", "none"] = "channel_fc"
    """Context-encoder bottleneck: channel_fc (Pathak et al.'s channel-wise fully connected layer, global context) or none."""
    gated: bool = False
    """unet only: gated convolutions in the encoder and middle (DeepFill v2; twice their cost)."""
    upsample: Literal["nearest", "bilinear"] = "nearest"
    """unet only: how the decoder doubles the side before its convolution (nearest measured 0.1-0.3 dB better at equal budget; bilinear fills look smoother early in training)."""
    discriminator: Literal["patchgan"] = "patchgan"
    """Discriminator architecture (PatchGAN, logits per patch)."""
    d_width: int = Field(64, ge=4, le=256)
    """Channels of the discriminator's first layer."""
    d_layers: int = Field(3, ge=1, le=5)
    """Stride-2 layers of the PatchGAN (3 gives 70x70 patches)."""
    d_spectral_norm: bool = False
    """Spectral normalisation on every conv of the PatchGAN instead of batch norm (Miyato et al. 2018)."""


class InpaintLossConfig(LossConfig):
    reconstruction: float = Field(0.8, ge=0)
    """Weight of the reconstruction loss (inpaint: L1 over the hole, normalised by hole area)."""


class InpaintEvalConfig(EvalConfig):
    mask: str = "center"
    """Occlusion used for evaluation (deterministic per image): a mask type or a PNG file."""
    seed: int = 0
    """Seed of the evaluation masks: image i's mask depends only on (mask, i, seed)."""


class InpaintRecipe(RecipeBase):
    task: Literal["inpaint"]
    """Task engine: inpaint (occluded faces) or sr (super-resolution ×2/×4/×8); it decides which model and loss keys exist."""
    data: InpaintDataConfig = InpaintDataConfig()
    model: InpaintModelConfig = InpaintModelConfig()
    loss: InpaintLossConfig = InpaintLossConfig()
    eval: InpaintEvalConfig = InpaintEvalConfig()


# --------------------------------------------------------------------------------------------
# Maths
# --------------------------------------------------------------------------------------------


def composite(output: torch.Tensor, known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Generated pixels inside the hole, ``known`` pixels outside."""
    return output * mask + known * (1 - mask)


def hole_l1_loss(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over hole pixels (all channels), normalised by the hole area."""
    err = (output - target).abs() * mask
    return err.sum() / (mask.sum() * output.shape[1]).clamp_min(1.0)


def biharmonic_fill(masked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """scikit-image's ``inpaint_biharmonic`` of each image's hole, from its uint8 known pixels.

    ``masked`` (B,3,S,S) in [-1, 1], ``mask`` (B,1,S,S), 1 = hole. The classical reference of
    ``facegan eval``: the smoothest fill (biharmonic equation) that meets the hole's border.
    """
    from skimage.restoration import inpaint_biharmonic

    from facegan.metrics.quality import to_uint8

    known = to_uint8(masked).astype(np.float64) / 255.0
    holes = mask[:, 0].detach().cpu().numpy() > 0.5
    out = np.empty_like(known)
    for i, (img, hole) in enumerate(zip(known, holes)):
        out[i] = inpaint_biharmonic(img, hole, channel_axis=-1) if hole.any() else img
    filled = torch.from_numpy(out.clip(0.0, 1.0)).permute(0, 3, 1, 2).float() * 2 - 1
    return filled.to(masked.device)


# --------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------


@dataclass
class InpaintBatch(TaskBatch):
    mask: torch.Tensor | None = None
    """(B,1,S,S), 1 = hole."""


class InpaintTask(Task):
    name: ClassVar[str] = "inpaint"
    noun: ClassVar[str] = "inpainting"
    recipe_type: ClassVar[type] = InpaintRecipe
    #: Any inpainting checkpoint fills any mask.
    options: ClassVar[dict[str, OptionRule]] = {"mask": OptionRule()}
    takes_hole: ClassVar[bool] = True
    references: ClassVar[tuple[Reference, ...]] = (
        Reference("grey", "grey hole (no model)"),
        Reference("biharmonic", "biharmonic (scikit-image)"),
        Reference("fsr_fast", "OpenCV FSR fast (peer)", requires=opencv_fills.REQUIRES),
        Reference("telea", "OpenCV Telea (peer)", requires=opencv_fills.REQUIRES),
    )
    metric_columns: ClassVar[tuple[MetricInfo, ...]] = (PSNR, SSIM, HOLE_L1, HOLE_PSNR, DETAIL)
    #: Only the hole is taken from the model; the seam around it is 1/64 of the model's size
    #: (at least one aligned pixel). It only hides the hole's pixel steps: the band it blends
    #: holds the input resampled through the aligned frame, softer than the photo, so it is thin.
    paste_rule: ClassVar[PasteRule] = PasteRule("hole", feather=1 / 64, min_px=1.0)
    face_columns: ClassVar[tuple[Column, ...]] = (
        Column("face", "input"), Column("occluded", "occluded"), Column("restored", "restored"),
    )
    photo_row: ClassVar[tuple[Panel, ...]] = (
        Panel("input", "photo"), Panel("occluded", "occluded"), Panel("restored", "restored"),
    )

    # ---- models -----------------------------------------------------------------------------

    def build_generator(self) -> nn.Module:
        m = self.recipe.model
        if m.generator == "unet":
            from facegan.models.unet import FaceUNet

            return FaceUNet(self.size, m.width, m.gated, m.upsample)
        from facegan.models.context_encoder import ContextEncoder

        return ContextEncoder(self.size, m.width, m.bottleneck)

    def build_discriminator(self) -> nn.Module:
        from facegan.models.patchgan import PatchGAN

        m = self.recipe.model
        return PatchGAN(3, m.d_width, m.d_layers, spectral_norm=m.d_spectral_norm)

    # ---- batches ----------------------------------------------------------------------------

    def with_mask(self, images: torch.Tensor | None, faces: torch.Tensor, mask: torch.Tensor) -> InpaintBatch:
        """A batch whose ``faces`` lose their pixels under ``mask``; ``images`` is the target."""
        mask = mask.to(faces.device, faces.dtype)
        return InpaintBatch(target=images, inputs=(faces * (1 - mask), mask), mask=mask)

    def train_batch(self, images: torch.Tensor, landmarks: torch.Tensor, generator: torch.Generator) -> InpaintBatch:
        mask = masklib.make_mixed_masks(
            self.recipe.data.masks, images.shape[0], self.size, landmarks=landmarks, generator=generator, device=images.device
        )
        return self.with_mask(images, images, mask)

    def eval_settings(self, options: TaskOptions = TaskOptions(), size: int | None = None) -> EvalSettings:
        from facegan.data import mask_files

        ev = self.recipe.eval
        spec = mask_files.parse_mask_spec(options.mask or ev.mask)
        if isinstance(spec, str):
            name, value = spec, spec
        else:  # a mask image, shared by every face
            name, value = spec.stem, mask_files.load_mask_file(spec, size or self.size)
        return EvalSettings(label=name, caption=f"mask '{name}' (seed {ev.seed})",
                            summary={"mask": name, "mask_seed": ev.seed}, values={"mask": value, "seed": ev.seed})

    def eval_batch(self, images: torch.Tensor, landmarks: torch.Tensor, indices, settings: EvalSettings) -> InpaintBatch:
        """Deterministic masks: image i's hole depends only on (mask, i, seed)."""
        spec = settings.values["mask"]
        if isinstance(spec, str):
            mask = masklib.eval_masks(spec, [int(i) for i in indices], self.size, landmarks=landmarks.cpu(),
                                      seed=settings.values["seed"])
        else:  # a mask tensor loaded from a file, shared by every image
            mask = spec.expand(images.shape[0], -1, -1, -1)
        return self.with_mask(images, images, mask)

    def inference_batch(self, faces: torch.Tensor, hole: torch.Tensor | None) -> InpaintBatch:
        return self.with_mask(None, faces, hole)

    # ---- forward and losses -----------------------------------------------------------------

    def run(self, generator: nn.Module, batch: InpaintBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw generator output, composite: the output in the hole, the known pixels elsewhere)."""
        raw = generator(*batch.inputs)
        return raw, composite(raw.float(), batch.inputs[0], batch.mask)

    def losses(self, raw: torch.Tensor, result: torch.Tensor, batch: InpaintBatch) -> dict[str, torch.Tensor]:
        return {"rec": hole_l1_loss(raw.float(), batch.target, batch.mask)}

    def loss_weights(self) -> dict[str, float]:
        return {"rec": self.recipe.loss.reconstruction}

    # ---- evaluation -------------------------------------------------------------------------

    def reference_outputs(self, batch: InpaintBatch, keys: tuple[str, ...],
                          peers: PeerModels | None = None) -> dict[str, torch.Tensor]:
        """The hole left mid-grey (what the user has), its biharmonic fill, and the OpenCV peers
        (:mod:`facegan.tasks.opencv_fills`) when they are installed."""
        masked = batch.inputs[0]
        fills = {"grey": lambda: masked, "biharmonic": lambda: biharmonic_fill(masked, batch.mask),
                 "fsr_fast": lambda: opencv_fills.opencv_fill(masked, batch.mask, "fsr_fast"),
                 "telea": lambda: opencv_fills.opencv_fill(masked, batch.mask, "telea")}
        return {key: fills[key]() for key in keys}

    def score(self, out_u8: np.ndarray, gt_u8: np.ndarray, batch: InpaintBatch) -> dict[str, np.ndarray]:
        """PSNR/SSIM of the whole composite, hole L1 ×100, hole-only PSNR, and the detail inside
        the hole eroded by 2 px (docs/design.md)."""
        from facegan.metrics import quality as metrics
        from facegan.metrics import realism

        hole = batch.mask[:, 0].cpu().numpy() > 0.5
        return {
            "psnr": metrics.psnr(out_u8, gt_u8),
            "ssim": metrics.ssim(out_u8, gt_u8),
            "hole_l1": metrics.hole_l1(out_u8, gt_u8, hole),
            "hole_psnr": metrics.hole_psnr(out_u8, gt_u8, hole),
            "detail": realism.detail(out_u8, gt_u8, realism.eroded(hole)),
        }

    def lmd_landmarks(self, settings: EvalSettings) -> tuple[int, ...]:
        """The eyes' 12 landmarks for the eyes mask, the mouth's 20 for the mouth mask, else all 68."""
        from facegan.metrics.realism import LANDMARKS

        return LANDMARKS.get(settings.label if settings.label in ("eyes", "mouth") else "all")

    # ---- pictures ---------------------------------------------------------------------------

    def visuals(self, batch: InpaintBatch, raw: torch.Tensor, result: torch.Tensor) -> list[Visual]:
        shown = batch.inputs[0] + batch.mask * torch.tensor([0.6, 0.6, 0.6], device=result.device).view(1, 3, 1, 1)
        return [
            Visual("ground truth", batch.target),
            Visual("masked input", shown.clamp(-1, 1)),
            Visual("output", raw.float().clamp(-1, 1)),
            Visual("composite", result.clamp(-1, 1)),
        ]
