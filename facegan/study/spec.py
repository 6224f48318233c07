"""Ablation specs: a base recipe and the variants to compare against each other.

A spec is a small YAML file (``recipes/ablate_*.yaml``)::

    base: inpaint_identity.yaml        # a recipe, relative to this file
    baseline: baseline                 # the variant every other is compared with
    seeds: 1                           # training seeds per variant (--seeds overrides)
    variants:
      - {name: baseline, set: [loss.identity=0]}
      - {name: identity, set: [loss.identity=0.1]}
    eval: {split: test, mask: center, judge: dlib}
    quick: {set: [data.path=data/sample, train.steps=60, model.width=16]}

Each variant is the base recipe with ``--set``-style overrides. Overrides are applied in the
order: the spec's own ``set`` (shared by every variant, e.g. the budget), the variant's ``set``,
``quick.set`` (with ``--quick``; the spec's author keeps it off
the keys the variants compare, or clears them on purpose, e.g. a loss that needs weights that
cannot be downloaded offline), the command line's ``--set`` (every run, last word), then
``train.seed=k`` and the run name. Problems are FaceganErrors that name the YAML path
(``variants.1.name: ...``), like recipe errors do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from facegan.core.errors import FaceganError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class VariantSpec(_Section):
    name: str
    """Row label and run folder name (letters, digits, ``_ . + -``)."""
    set: list[str] = []
    """``--set``-style overrides of the base recipe that make this variant, e.g. ``loss.identity=0``."""
    description: str = ""
    """Free text shown in results.md."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("must be a folder name: letters, digits and _ . + - (not starting with one of them)")
        return v

    @field_validator("set")
    @classmethod
    def _overrides(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if "=" not in s]
        if bad:
            raise ValueError(f"expected KEY=VALUE overrides, got {bad[0]!r}")
        return v


class EvalSpec(_Section):
    split: str | None = None
    """Split every run is scored on (default: the recipe's eval.split)."""
    mask: str | None = None
    """Evaluation occlusion for inpainting, the same fixed holes for every run (default: the recipe's eval.mask)."""
    judge: str | None = "dlib"
    """Independent identity judge (dlib, or an identity network no variant trains with); null for none."""
    max_images: int | None = Field(None, ge=1)
    """Score only the first N test images."""


class QuickSpec(_Section):
    set: list[str] = []
    """Overrides applied with --quick: few steps, a narrow model, the sample data (a CPU smoke study)."""


class AblationSpec(_Section):
    base: str
    """Base recipe, relative to the spec file."""
    description: str = ""
    """Free text shown in results.md."""
    variants: list[VariantSpec] = Field(min_length=2)
    """The variants (at least two), in table order."""
    baseline: str | None = None
    """Name of the variant the others are compared with (default: the first)."""
    seeds: int = Field(1, ge=1, le=100)
    """Training seeds per variant (train.seed = 0 .. seeds-1)."""
    set: list[str] = []
    """Overrides of the base recipe shared by every variant (e.g. the study's training budget), applied before each variant's own."""
    eval: EvalSpec = EvalSpec()
    quick: QuickSpec = QuickSpec()

    @field_validator("set")
    @classmethod
    def _shared(cls, v: list[str]) -> list[str]:
        return VariantSpec._overrides(v)

    @model_validator(mode="after")
    def _names(self) -> AblationSpec:
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant names must be unique, {', '.join(dupes)} repeats")
        if self.baseline is None:
            self.baseline = names[0]
        elif self.baseline not in names:
            raise ValueError(f"baseline {self.baseline!r} is not a variant ({', '.join(names)})")
        return self


@dataclass(frozen=True)
class Study:
    """A loaded spec: where it came from and its base recipe's resolved path."""

    spec: AblationSpec
    path: Path
    base: Path

    @property
    def name(self) -> str:
        return self.path.stem

    def variant(self, name: str) -> VariantSpec:
        return next(v for v in self.spec.variants if v.name == name)


def load_study(path: str | Path) -> Study:
    """Read and validate an ablation spec; the base recipe must exist."""
    from facegan.core.yaml_file import load_raw

    path = Path(path)
    raw = load_raw(path, "ablation spec")
    if not isinstance(raw, dict):
        raise FaceganError(f"{path}: an ablation spec is a YAML mapping (base: ..., variants: [...])")
    try:
        spec = AblationSpec.model_validate(raw)
    except ValidationError as err:
        raise FaceganError(f"{path}: {_describe(err)}") from None
    base = (path.parent / spec.base).resolve() if not Path(spec.base).is_absolute() else Path(spec.base)
    if not base.is_file():
        raise FaceganError(f"{path}: base: recipe {spec.base} not found (looked for {base})")
    return Study(spec, path, base)


def run_overrides(study: Study, variant: str, seed: int, quick: bool = False, extra: list[str] | tuple = ()) -> list[str]:
    """The ``--set`` overrides of one run, in the order the module docstring gives."""
    spec = study.spec
    return [
        *spec.set,
        *study.variant(variant).set,
        *(spec.quick.set if quick else []),
        *extra,
        f"train.seed={seed}",
        f"name={study.name}-{variant}-seed{seed}",
    ]


def run_recipe(study: Study, variant: str, seed: int, quick: bool = False, extra: list[str] | tuple = ()):
    """The validated recipe of one run; a bad override is a FaceganError naming the variant."""
    from facegan.tasks.recipes import load_recipe

    try:
        return load_recipe(study.base, run_overrides(study, variant, seed, quick, extra))
    except FaceganError as err:
        raise FaceganError(f"{study.path}: variant {variant!r}: {err}") from None


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        section = _section_for(first["loc"][:-1])
        msg = f"unknown key (expected one of: {', '.join(section.model_fields)})" if section else "unknown key"
    elif first["type"] == "missing":
        msg = "required key is missing"
    elif first.get("input") is not None and not isinstance(first["input"], (dict, list)):
        msg = f"{msg} (got {first['input']!r})"
    more = len(err.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{loc + ': ' if loc else ''}{msg}{tail}"


def _section_for(loc: tuple) -> type[BaseModel] | None:
    """The spec section at a validation-error location (list indices skipped)."""
    model: type[BaseModel] = AblationSpec
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        if get_origin(ann) is list:  # list[VariantSpec] -> VariantSpec
            ann = get_args(ann)[0]
        if not (isinstance(ann, type) and get_origin(ann) is None and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model
