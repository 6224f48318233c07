"""The recipe schema every task shares: the sections, their keys, their defaults.

A recipe says which task engine runs and with what data, model, losses and schedule. Every
task shares the ``data``/``train``/``eval`` keys defined here; ``model`` and ``loss`` (and a few
``data``/``eval`` keys) are the task's own: each task's module holds its schema, a subclass of
:class:`RecipeBase` (``InpaintRecipe`` in :mod:`facegan.tasks.inpaint`, ``SRRecipe`` in
:mod:`facegan.tasks.sr`). Every field has a docstring: it is what ``facegan keys`` prints and
what an error message quotes. Loading and validating a recipe file: :mod:`facegan.tasks.recipes`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    """Base of every recipe section: unknown keys are errors, docstrings are help."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True,
                              allow_inf_nan=False)


class DataConfig(Section):
    """The ``data`` keys every task shares."""

    path: str = "data/sample"
    """Packed dataset directory made by `facegan prepare` (relative paths: from the working directory); when a recipe leaves it out, `facegan train` says it trains on this default."""
    size: int = Field(128, ge=32, le=1024)
    """Image side in pixels (sr: of the high-resolution faces); must equal the packed dataset's size and be a multiple of 16."""
    hflip: bool = True
    """Random horizontal flips of training faces (landmarks are flipped with them)."""
    placement: Literal["auto", "device", "host"] = "auto"
    """Where the train split is held: on the accelerator (no copies per step), in pinned host RAM, or auto (device when it takes under a quarter of free accelerator memory)."""

    @field_validator("size")
    @classmethod
    def _size(cls, v: int) -> int:
        if v % 16:
            raise ValueError("must be a multiple of 16")
        return v


def ordered_range(v: tuple) -> tuple:
    if v[0] > v[1]:
        raise ValueError(f"expected [low, high] with low <= high, got [{v[0]}, {v[1]}]")
    return v


IdentityNetName = Literal["mobilefacenet", "facenet-vggface2", "facenet-casia"]


class ModelConfig(Section):
    """The ``model`` keys every task shares; each task adds its architecture's keys."""

    mirror_ensemble: bool = False
    """Evaluate and restore with a mirror self-ensemble: the generator also runs on the mirrored input and the two outputs are averaged (twice the inference cost, same weights; training is unchanged). See docs/models.md."""


class LossConfig(Section):
    """The ``loss`` keys every task shares (adversarial and identity terms live in the shared loop)."""

    adversarial: float = Field(0.1, ge=0)
    """Weight of the adversarial loss (loss.adversarial_loss); 0 turns it off: the discriminator is never run or stepped (a plain regression model, faster per step)."""
    adversarial_loss: Literal["bce", "hinge", "relativistic"] = "bce"
    """The adversarial loss: bce (non-saturating, on logits), hinge (SAGAN) or relativistic (the relativistic average GAN of ESRGAN: D says whether a real face looks more real than the average generated one)."""
    identity: float = Field(0.1, ge=0)
    """Weight of the identity loss 1 - cos(embed(output), embed(ground truth)); 0 turns it off."""
    identity_net: IdentityNetName = "mobilefacenet"
    """Frozen face-recognition network of the identity loss (mobilefacenet ships with facegan; facenet-vggface2 downloads once)."""
    identity_weights: str | None = None
    """Local path of the identity network's weights (overrides the packaged/cached file)."""
    identity_blur: float = Field(0.0, ge=0, le=8)
    """Sigma (pixels at data.size) of a Gaussian blur applied to output and ground truth before the identity network sees them; 0 = none. Detail finer than the blur cannot raise the identity score, so the generator is not paid to paint the tinted pixel grids a frozen recogniser likes (docs/models.md)."""


class TrainConfig(Section):
    batch: int = Field(64, ge=1)
    """Images per step per process."""
    lr_g: float = Field(2e-4, gt=0)
    """Generator learning rate (Adam)."""
    lr_d: float = Field(5e-5, gt=0)
    """Discriminator learning rate (Adam)."""
    betas: tuple[float, float] = (0.5, 0.999)
    """Adam betas for both optimizers."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """Learning-rate schedule over the run."""
    steps: int | None = Field(None, ge=1)
    """Total optimisation steps, warm-up included (give steps or epochs, not both)."""
    epochs: float | None = Field(None, gt=0)
    """Passes over the train split (converted to steps; give steps or epochs, not both)."""
    warmup_steps: int = Field(0, ge=0)
    """Generator-only steps at the start of the run: the task and identity losses, no adversarial term, no discriminator step (sr: SRResNet pre-training). Counted in train.steps."""
    seed: int = 0
    """Seed of weights, data order and masks/degradations (each process adds its rank)."""
    amp: bool = False
    """bf16 autocast on CUDA, identity network included (ignored on CPU)."""
    identity_cache: bool = True
    """Embed each training face's identity-loss target (and its mirror image) once, when the run sees each at least once on average; false embeds the targets at every step (the same loss, slower)."""
    compile: bool = False
    """torch.compile the generator, discriminator and identity network (pays on CUDA; measure with `facegan bench train --compare train.compile=true`). Checkpoints and --resume are unaffected."""
    channels_last: bool = False
    """Channels-last memory format for models and batches (measure with `facegan bench train --compare train.channels_last=true`)."""
    init_from: str | None = None
    """Start from another run's weights instead of random ones: a run folder, a checkpoint file or a bundled model's name, of the same task and model section. Its generator (EMA weights when it has them; they also start this run's EMA) and its discriminator (when it has one) are loaded; the optimisers, the learning-rate schedule and the step count start afresh (fine-tuning). Only read at step 0: --resume continues from the run's own checkpoint."""
    ema: float = Field(0.999, ge=0, lt=1)
    """Decay of the generator's exponential moving average (used by eval and restore); 0 turns it off."""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N."""
    log_every: int = Field(10, ge=1)
    """Steps between progress/log flushes (every step's losses are logged)."""
    sample_every: int = Field(500, ge=1)
    """Steps between sample grids, validation PSNR/SSIM and curve plots."""
    checkpoint_every: int = Field(1000, ge=1)
    """Steps between checkpoints (one is always written at the end)."""
    keep_checkpoints: int = Field(3, ge=1)
    """Step checkpoints kept besides last.pt."""

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> "TrainConfig":
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("train: give exactly one of train.steps or train.epochs")
        return self


class EvalConfig(Section):
    """The ``eval`` keys every task shares."""

    split: str = "test"
    """Split scored by `facegan eval`."""
    batch: int = Field(32, ge=1)
    """Images per evaluation batch."""
    identity_net: IdentityNetName | None = None
    """Network that scores identity cosine (default: loss.identity_net)."""
    max_images: int | None = Field(None, ge=1)
    """Score only the first N images of the split."""


class RecipeBase(Section):
    """What every recipe holds; :class:`InpaintRecipe` and :class:`SRRecipe` add their task's keys."""

    task: str
    """Task engine: inpaint (occluded faces) or sr (super-resolution ×2/×4/×8); it decides which model and loss keys exist."""
    name: str | None = None
    """Run name (default: the recipe file's stem); runs go to runs/<name>."""
    description: str = ""
    """Free text shown in reports."""
    data: DataConfig = DataConfig()
    model: ModelConfig
    loss: LossConfig
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(steps=1000))
    eval: EvalConfig = EvalConfig()


#: A validated recipe: an instance of its task's :class:`RecipeBase` subclass.
Recipe = RecipeBase
