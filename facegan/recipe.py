"""Recipes: YAML files validated into a typed :class:`Recipe`.

A recipe says which task engine runs and with what data, model, losses and schedule. Its
``task`` key chooses the schema (a pydantic discriminated union): :class:`InpaintRecipe` or
:class:`SRRecipe`. Both share the ``data``/``train``/``eval`` keys of :class:`RecipeBase`;
``model`` and ``loss`` (and a few ``data``/``eval`` keys) are the task's own. Every field has a
docstring: it is what ``facegan keys`` prints and what an error message quotes. Unknown keys
and wrong types fail with the YAML path and what was expected.

``--set a.b=c`` overrides are applied to the raw YAML mapping before validation, so an
override is checked exactly like a key written in the file. Values are parsed as YAML
(``--set train.amp=true``, ``--set data.masks=[center,eyes]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from facegan.errors import FaceganError


class Section(BaseModel):
    """Base of every recipe section: unknown keys are errors, docstrings are help."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)


class DataConfig(Section):
    """The ``data`` keys every task shares."""

    path: str = "data/sample"
    """Packed dataset directory made by `facegan prepare` (relative paths: from the working directory)."""
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


class InpaintDataConfig(DataConfig):
    masks: list[str] = ["center", "eyes", "mouth", "box", "freeform"]
    """Training occlusions; each image gets one, chosen at random: center, half, eyes, mouth, box, freeform, glasses, facemask."""

    @field_validator("masks")
    @classmethod
    def _masks(cls, v: list[str]) -> list[str]:
        from facegan.data.masks import MASK_TYPES

        bad = [m for m in v if m not in MASK_TYPES]
        if bad or not v:
            raise ValueError(f"unknown mask type(s) {bad or '[]'}; expected a non-empty list of {', '.join(MASK_TYPES)}")
        return v


def _ordered_range(v: tuple) -> tuple:
    if v[0] > v[1]:
        raise ValueError(f"expected [low, high] with low <= high, got [{v[0]}, {v[1]}]")
    return v


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
        return _ordered_range(v)

    @field_validator("jpeg_quality")
    @classmethod
    def _quality(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is None:
            return v
        if min(v) < 1 or max(v) > 100:
            raise ValueError(f"JPEG quality must be within 1..100, got [{v[0]}, {v[1]}]")
        return _ordered_range(v)


class SRDataConfig(DataConfig):
    degradation: DegradationConfig = DegradationConfig()


class InpaintModelConfig(Section):
    generator: Literal["context_encoder", "unet"] = "context_encoder"
    """Generator architecture: context_encoder (the source design: encoder, 8x8 code, transposed-convolution decoder) or unet (skips at every scale, dilated middle, resize-convolution decoder; see docs/models.md)."""
    width: int = Field(64, ge=4, le=256)
    """Channels of the generator's first layer; they double per level (64 -> 512 in the source design)."""
    bottleneck: Literal["channel_fc", "none"] = "channel_fc"
    """Context-encoder bottleneck: channel_fc (Pathak et al.'s channel-wise fully connected layer, global context) or none."""
    gated: bool = False
    """unet only: gated convolutions in the encoder and middle (DeepFill v2; twice their cost)."""
    discriminator: Literal["patchgan"] = "patchgan"
    """Discriminator architecture (PatchGAN, logits per patch)."""
    d_width: int = Field(64, ge=4, le=256)
    """Channels of the discriminator's first layer."""
    d_layers: int = Field(3, ge=1, le=5)
    """Stride-2 layers of the PatchGAN (3 gives 70x70 patches)."""


class SRModelConfig(Section):
    generator: Literal["srresnet"] = "srresnet"
    """Generator architecture (sr: srresnet, the SRGAN generator)."""
    scale: Literal[2, 4, 8] = 4
    """Upscaling factor: the low-resolution input is data.size / scale pixels wide. Stored in checkpoints; a checkpoint only upscales by its own scale."""
    num_blocks: int = Field(5, ge=1, le=64)
    """Residual blocks of the SRResNet (5 in the source design, 16 in the SRGAN paper)."""
    width: int = Field(64, ge=4, le=256)
    """Channels of the SRResNet's body (64 in SRGAN)."""
    discriminator: Literal["vgg"] = "vgg"
    """Discriminator architecture (sr: vgg, SRGAN's 8-conv VGG-style network with a 1x1-conv head, logits)."""
    d_width: int = Field(64, ge=4, le=256)
    """Channels of the discriminator's first conv; they double every other layer (64 -> 512 in SRGAN)."""
    d_head: int = Field(1024, ge=4, le=4096)
    """Channels of the discriminator's hidden 1x1 conv after pooling (1024 in SRGAN)."""


IdentityNetName = Literal["mobilefacenet", "facenet-vggface2", "facenet-casia"]


class LossConfig(Section):
    """The ``loss`` keys every task shares (adversarial and identity terms live in the shared loop)."""

    adversarial: float = Field(0.1, ge=0)
    """Weight of the non-saturating adversarial loss (BCE on discriminator logits)."""
    identity: float = Field(0.1, ge=0)
    """Weight of the identity loss 1 - cos(embed(output), embed(ground truth)); 0 turns it off."""
    identity_net: IdentityNetName = "mobilefacenet"
    """Frozen face-recognition network of the identity loss (mobilefacenet ships with facegan; facenet-vggface2 downloads once)."""
    identity_weights: str | None = None
    """Local path of the identity network's weights (overrides the packaged/cached file)."""


class InpaintLossConfig(LossConfig):
    reconstruction: float = Field(0.8, ge=0)
    """Weight of the reconstruction loss (inpaint: L1 over the hole, normalised by hole area)."""


class SRLossConfig(LossConfig):
    adversarial: float = Field(0.001, ge=0)
    """Weight of the non-saturating adversarial loss (BCE on discriminator logits); 0.001 in SRGAN."""
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
        from facegan.models.perceptual import VGG19_LAYERS

        if v not in VGG19_LAYERS or v.startswith("pool"):
            raise ValueError(f"unknown VGG19 layer {v!r}; expected convB_I or reluB_I, e.g. conv5_4, relu5_4, conv2_2")
        return v


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
    """The ``eval`` keys every task shares."""

    split: str = "test"
    """Split scored by `facegan eval`."""
    batch: int = Field(32, ge=1)
    """Images per evaluation batch."""
    identity_net: IdentityNetName | None = None
    """Network that scores identity cosine (default: loss.identity_net)."""
    max_images: int | None = Field(None, ge=1)
    """Score only the first N images of the split."""


class InpaintEvalConfig(EvalConfig):
    mask: str = "center"
    """Occlusion used for evaluation (deterministic per image): a mask type or a PNG file."""
    seed: int = 0
    """Seed of the evaluation masks: image i's mask depends only on (mask, i, seed)."""


class RecipeBase(Section):
    """What every recipe holds; :class:`InpaintRecipe` and :class:`SRRecipe` add their task's keys."""

    task: str
    """Task engine: inpaint (occluded faces) or sr (super-resolution ×2/×4/×8); it decides which model and loss keys exist."""
    name: str | None = None
    """Run name (default: the recipe file's stem); runs go to runs/<name>."""
    description: str = ""
    """Free text shown in reports."""
    data: DataConfig = DataConfig()
    model: Section
    loss: LossConfig
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(steps=1000))
    eval: EvalConfig = EvalConfig()


class InpaintRecipe(RecipeBase):
    task: Literal["inpaint"]
    """Task engine: inpaint (occluded faces) or sr (super-resolution ×2/×4/×8); it decides which model and loss keys exist."""
    data: InpaintDataConfig = InpaintDataConfig()
    model: InpaintModelConfig = InpaintModelConfig()
    loss: InpaintLossConfig = InpaintLossConfig()
    eval: InpaintEvalConfig = InpaintEvalConfig()


class SRRecipe(RecipeBase):
    task: Literal["sr"]
    """Task engine: inpaint (occluded faces) or sr (super-resolution ×2/×4/×8); it decides which model and loss keys exist."""
    data: SRDataConfig = SRDataConfig()
    model: SRModelConfig = SRModelConfig()
    loss: SRLossConfig = SRLossConfig()


#: The recipe of each task, by its ``task`` value.
RECIPE_TYPES: dict[str, type[RecipeBase]] = {"inpaint": InpaintRecipe, "sr": SRRecipe}
#: A validated recipe: the class is chosen by the ``task`` key (a pydantic discriminated union).
Recipe = Annotated[Union[InpaintRecipe, SRRecipe], Field(discriminator="task")]
_RECIPE_ADAPTER = TypeAdapter(Recipe)


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
    root, loc = _strip_tag(first["loc"])
    where = ".".join(str(p) for p in loc if not str(p).startswith("function-"))
    msg = first["msg"].removeprefix("Value error, ")
    tasks = ", ".join(RECIPE_TYPES)
    if first["type"] == "extra_forbidden":
        section = _section_for(root, loc[:-1])
        known = ", ".join(section.model_fields) if section else ""
        msg = f"unknown key (expected one of: {known})"
    elif first["type"] in ("missing", "union_tag_not_found"):
        if first["type"] == "union_tag_not_found":
            where = "task"
        msg = "required key is missing" + (f" (one of: {tasks})" if where == "task" else "")
    elif first["type"] == "union_tag_invalid":
        where = "task"
        msg = f"unknown task (expected one of: {tasks}) (got {first['input'].get('task')!r})"
    else:
        got = first.get("input")
        if got is not None and not isinstance(got, dict):
            msg = f"{msg} (got {got!r})"
    more = len(err.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    where = f"{where}: " if where else ""
    return f"{source}: {where}{msg}{tail}"


def _strip_tag(loc: tuple) -> tuple[type[BaseModel] | None, tuple]:
    """The recipe class and the YAML path of an error location.

    Errors inside a discriminated union carry the task tag first (``('sr', 'loss', 'x')``):
    it names the recipe class and is not part of the YAML path.
    """
    if loc and str(loc[0]) in RECIPE_TYPES:
        return RECIPE_TYPES[str(loc[0])], tuple(loc[1:])
    return None, tuple(loc)


def _section_for(root: type[BaseModel] | None, loc: tuple) -> type[BaseModel] | None:
    model = root
    if model is None:
        return None
    for p in loc:
        field = model.model_fields.get(str(p))
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return None
        model = field.annotation
    return model


def validate_recipe(raw: Any, source: str = "recipe") -> InpaintRecipe | SRRecipe:
    """Validate a raw mapping into its task's recipe; FaceganError with the YAML path on any problem."""
    if not isinstance(raw, dict):
        raise FaceganError(f"{source}: a recipe is a YAML mapping (task: ..., data: ..., ...)")
    try:
        return _RECIPE_ADAPTER.validate_python(raw)
    except ValidationError as err:
        raise FaceganError(_format_error(source, err)) from None


def load_raw(path: str | Path, what: str = "recipe") -> dict:
    """The YAML mapping in ``path`` (a recipe, an ablation spec); one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise FaceganError(f"{what} {path} not found")
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


def _task_keys(task: str) -> list[tuple[str, str, str]]:
    """(key, default, description) of every key of ``task``'s recipes, in schema order."""
    rows: list[tuple[str, str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name}.")
                continue
            default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
            rows.append((prefix + name, default, field.description or ""))

    walk(RECIPE_TYPES[task], "")
    return rows


def describe_keys_by_task() -> list[tuple[str, str, str, str]]:
    """(key, tasks, default, description) for `facegan keys`: a key that is the same in every
    task is listed once with tasks ``all``; one whose default or meaning differs is listed per task."""
    seen: dict[tuple[str, str, str], list[str]] = {}
    for task in RECIPE_TYPES:
        for row in _task_keys(task):
            seen.setdefault(row, []).append(task)
    sections = list(RecipeBase.model_fields)
    order = {row: i for i, row in enumerate(seen)}

    def sort_key(row: tuple[str, str, str]) -> tuple[int, int]:
        top = row[0].split(".")[0]
        return (sections.index(top) if top in sections else len(sections), order[row])

    rows = sorted(seen, key=sort_key)
    return [(k, "all" if len(seen[(k, d, doc)]) == len(RECIPE_TYPES) else ", ".join(seen[(k, d, doc)]), d, doc)
            for k, d, doc in rows]


def describe_keys(task: str | None = None) -> list[tuple[str, str, str]]:
    """(key, default, description) for every key of ``task``'s recipes (None: of every task;
    a key whose default or meaning differs between tasks then appears once per task)."""
    if task is not None:
        if task not in RECIPE_TYPES:
            raise FaceganError(f"unknown task {task!r}; expected one of: {', '.join(RECIPE_TYPES)}")
        return _task_keys(task)
    return [(k, d, doc) for k, _, d, doc in describe_keys_by_task()]
