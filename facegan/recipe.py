"""Recipes: YAML files validated into a typed :class:`Recipe`.

A recipe says which task engine runs and with what data, model, losses and schedule. Every
field has a docstring: it is what ``facegan keys`` prints and what an error message quotes.
Unknown keys and wrong types fail with the YAML path and what was expected.

``--set a.b=c`` overrides are applied to the raw YAML mapping before validation, so an
override is checked exactly like a key written in the file. Values are parsed as YAML
(``--set train.amp=true``, ``--set data.masks=[center,eyes]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from facegan.errors import FaceganError


class Section(BaseModel):
    """Base of every recipe section: unknown keys are errors, docstrings are help."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)


class DataConfig(Section):
    path: str = "data/sample"
    """Packed dataset directory made by `facegan prepare` (relative paths: from the working directory)."""
    size: int = Field(128, ge=32, le=1024)
    """Image side in pixels; must equal the packed dataset's size and be a multiple of 16."""
    masks: list[str] = ["center", "eyes", "mouth", "box", "freeform"]
    """Training occlusions (inpaint); each image gets one, chosen at random: center, half, eyes, mouth, box, freeform, glasses, facemask."""
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

    @field_validator("masks")
    @classmethod
    def _masks(cls, v: list[str]) -> list[str]:
        from facegan.data.masks import MASK_TYPES

        bad = [m for m in v if m not in MASK_TYPES]
        if bad or not v:
            raise ValueError(f"unknown mask type(s) {bad or '[]'}; expected a non-empty list of {', '.join(MASK_TYPES)}")
        return v


class ModelConfig(Section):
    generator: Literal["context_encoder"] = "context_encoder"
    """Generator architecture (inpaint: context_encoder)."""
    width: int = Field(64, ge=4, le=256)
    """Channels of the generator's first layer; they double per level (64 -> 512 in the source design)."""
    bottleneck: Literal["channel_fc", "none"] = "channel_fc"
    """Context-encoder bottleneck: channel_fc (Pathak et al.'s channel-wise fully connected layer, global context) or none."""
    discriminator: Literal["patchgan"] = "patchgan"
    """Discriminator architecture (PatchGAN, logits per patch)."""
    d_width: int = Field(64, ge=4, le=256)
    """Channels of the discriminator's first layer."""
    d_layers: int = Field(3, ge=1, le=5)
    """Stride-2 layers of the PatchGAN (3 gives 70x70 patches)."""


class LossConfig(Section):
    reconstruction: float = Field(0.8, ge=0)
    """Weight of the reconstruction loss (inpaint: L1 over the hole, normalised by hole area)."""
    adversarial: float = Field(0.1, ge=0)
    """Weight of the non-saturating adversarial loss (BCE on discriminator logits)."""
    identity: float = Field(0.1, ge=0)
    """Weight of the identity loss 1 - cos(embed(output), embed(ground truth)); 0 turns it off."""
    identity_net: Literal["mobilefacenet", "facenet-vggface2"] = "mobilefacenet"
    """Frozen face-recognition network of the identity loss (mobilefacenet ships with facegan; facenet-vggface2 downloads once)."""
    identity_weights: str | None = None
    """Local path of the identity network's weights (overrides the packaged/cached file)."""


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
    """Total optimisation steps (give steps or epochs, not both)."""
    epochs: float | None = Field(None, gt=0)
    """Passes over the train split (converted to steps; give steps or epochs, not both)."""
    seed: int = 0
    """Seed of weights, data order and masks (each process adds its rank)."""
    amp: bool = False
    """bf16 autocast on CUDA (ignored on CPU)."""
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
    split: str = "test"
    """Split scored by `facegan eval`."""
    mask: str = "center"
    """Occlusion used for evaluation (deterministic per image): a mask type or a PNG file."""
    seed: int = 0
    """Seed of the evaluation masks: image i's mask depends only on (mask, i, seed)."""
    batch: int = Field(32, ge=1)
    """Images per evaluation batch."""
    identity_net: Literal["mobilefacenet", "facenet-vggface2"] | None = None
    """Network that scores identity cosine (default: loss.identity_net)."""
    max_images: int | None = Field(None, ge=1)
    """Score only the first N images of the split."""


class Recipe(Section):
    task: Literal["inpaint"]
    """Task engine: inpaint (occluded faces). Super-resolution (sr) arrives with its engine."""
    name: str | None = None
    """Run name (default: the recipe file's stem); runs go to runs/<name>."""
    description: str = ""
    """Free text shown in reports."""
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(steps=1000))
    eval: EvalConfig = EvalConfig()


# --------------------------------------------------------------------------- loading


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'loss.identity=0'`` -> (['loss', 'identity'], 0); the value is parsed as YAML."""
    if "=" not in text:
        raise FaceganError(f"--set {text!r}: expected KEY=VALUE, e.g. --set loss.identity=0")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise FaceganError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``--set`` overrides to a raw recipe mapping (a copy is returned)."""
    import copy

    out = copy.deepcopy(raw)
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for p in parts[:-1]:
            child = node.get(p)
            if child is None:
                child = node[p] = {}
            if not isinstance(child, dict):
                raise FaceganError(f"--set {text!r}: {p} is not a section")
            node = child
        node[parts[-1]] = value
        if parts == ["train", "steps"] and value is not None:
            node.pop("epochs", None)  # --set train.steps=N replaces an epochs budget
        if parts == ["train", "epochs"] and value is not None:
            node.pop("steps", None)
    return out


def _format_error(source: str, err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        section = _section_for(first["loc"][:-1])
        known = ", ".join(section.model_fields) if section else ""
        msg = f"unknown key (expected one of: {known})"
    elif first["type"] == "missing":
        msg = "required key is missing"
    else:
        got = first.get("input")
        if got is not None and not isinstance(got, dict):
            msg = f"{msg} (got {got!r})"
    more = len(err.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    where = f"{loc}: " if loc else ""
    return f"{source}: {where}{msg}{tail}"


def _section_for(loc: tuple) -> type[BaseModel] | None:
    model: type[BaseModel] = Recipe
    for p in loc:
        field = model.model_fields.get(str(p))
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return None
        model = field.annotation
    return model


def validate_recipe(raw: Any, source: str = "recipe") -> Recipe:
    """Validate a raw mapping; FaceganError with the YAML path on any problem."""
    if not isinstance(raw, dict):
        raise FaceganError(f"{source}: a recipe is a YAML mapping (task: ..., data: ..., ...)")
    try:
        return Recipe.model_validate(raw)
    except ValidationError as err:
        raise FaceganError(_format_error(source, err)) from None


def load_raw(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FaceganError(f"recipe {path} not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise FaceganError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    except UnicodeDecodeError:
        raise FaceganError(f"{path}: not a text file") from None
    return raw if raw is not None else {}


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate a recipe file."""
    raw = load_raw(path)
    if not isinstance(raw, dict):
        raise FaceganError(f"{path}: a recipe is a YAML mapping (task: ..., data: ..., ...)")
    raw = apply_overrides(raw, overrides or [])
    recipe = validate_recipe(raw, str(path))
    if recipe.name is None:
        recipe.name = Path(path).stem
    return recipe


def recipe_to_yaml(recipe: Recipe) -> str:
    """The fully resolved recipe as YAML (what --dry-run prints and checkpoints store)."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)


def describe_keys() -> list[tuple[str, str, str]]:
    """(key, default, description) for every recipe key, for `facegan keys`."""
    rows: list[tuple[str, str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name}.")
                continue
            default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
            rows.append((prefix + name, default, field.description or ""))

    walk(Recipe, "")
    return rows
