"""Recipes: YAML files validated into a typed recipe.

A recipe says which task engine runs and with what data, model, losses and schedule. Its
``task`` key chooses the schema (a pydantic discriminated union over the tasks of
:data:`facegan.engines.tasks.TASKS`); each task's module holds its schema, a subclass of
:class:`RecipeBase` (``InpaintRecipe`` in :mod:`facegan.engines.inpaint`, ``SRRecipe`` in
:mod:`facegan.engines.sr`). Every task shares the ``data``/``train``/``eval`` keys defined
here; ``model`` and ``loss`` (and a few ``data``/``eval`` keys) are the task's own. Every field has a
docstring: it is what ``facegan keys`` prints and what an error message quotes. Unknown keys
and wrong types fail with the YAML path and what was expected.

``--set a.b=c`` overrides are applied to the raw YAML mapping before validation, so an
override is checked exactly like a key written in the file. Values are parsed as YAML
(``--set train.amp=true``, ``--set data.masks=[center,eyes]``).
"""

from __future__ import annotations

from pathlib import Path
import functools
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from facegan.errors import FaceganError


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


def _ordered_range(v: tuple) -> tuple:
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
    """Weight of the non-saturating adversarial loss (BCE on discriminator logits); 0 turns it off: the discriminator is never run or stepped (a plain regression model, faster per step)."""
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


def recipe_types() -> dict[str, type[RecipeBase]]:
    """The recipe schema of each task, by its ``task`` value."""
    from facegan.engines.tasks import recipe_types as of_tasks

    return of_tasks()


@functools.cache
def _recipe_adapter() -> TypeAdapter:
    """The discriminated union of every task's recipe (built on first use, not at import)."""
    types = tuple(recipe_types().values())
    if len(types) == 1:
        return TypeAdapter(types[0])
    return TypeAdapter(Annotated[Union[types], Field(discriminator="task")])


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
    tasks = ", ".join(recipe_types())
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
    types = recipe_types()
    if loc and str(loc[0]) in types:
        return types[str(loc[0])], tuple(loc[1:])
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


def validate_recipe(raw: Any, source: str = "recipe") -> Recipe:
    """Validate a raw mapping into its task's recipe; FaceganError with the YAML path on any problem."""
    if not isinstance(raw, dict):
        raise FaceganError(f"{source}: a recipe is a YAML mapping (task: ..., data: ..., ...)")
    try:
        return _recipe_adapter().validate_python(raw)
    except ValidationError as err:
        raise FaceganError(_format_error(source, err)) from None


class _DuplicateKey(Exception):
    """A YAML mapping names the same key twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing duplicate keys (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(f"duplicate key {key!r} (lines {seen[key]} and {line}): keep one")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyLoader.construct_mapping)


def load_raw(path: str | Path, what: str = "recipe") -> dict:
    """The YAML mapping in ``path`` (a recipe, an ablation spec); one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise FaceganError(f"{what} {path} not found" if not path.is_dir() else f"{what} {path} is a folder, not a YAML file")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except _DuplicateKey as err:
        raise FaceganError(f"{path}: {err}") from None
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

    walk(recipe_types()[task], "")
    return rows


def describe_keys_by_task() -> list[tuple[str, str, str, str]]:
    """(key, tasks, default, description) for `facegan keys`: a key that is the same in every
    task is listed once with tasks ``all``; one whose default or meaning differs is listed per task."""
    seen: dict[tuple[str, str, str], list[str]] = {}
    types = recipe_types()
    for task in types:
        for row in _task_keys(task):
            seen.setdefault(row, []).append(task)
    sections = list(RecipeBase.model_fields)
    order = {row: i for i, row in enumerate(seen)}

    def sort_key(row: tuple[str, str, str]) -> tuple[int, int]:
        top = row[0].split(".")[0]
        return (sections.index(top) if top in sections else len(sections), order[row])

    rows = sorted(seen, key=sort_key)
    return [(k, "all" if len(seen[(k, d, doc)]) == len(types) else ", ".join(seen[(k, d, doc)]), d, doc)
            for k, d, doc in rows]


def describe_keys(task: str | None = None) -> list[tuple[str, str, str]]:
    """(key, default, description) for every key of ``task``'s recipes (None: of every task;
    a key whose default or meaning differs between tasks then appears once per task)."""
    if task is not None:
        types = recipe_types()
        if task not in types:
            raise FaceganError(f"unknown task {task!r}; expected one of: {', '.join(types)}")
        return _task_keys(task)
    return [(k, d, doc) for k, _, d, doc in describe_keys_by_task()]
