"""Recipes: YAML files validated into a typed recipe of their task's schema.

A recipe's ``task`` key chooses the schema (a pydantic discriminated union over the tasks of
:data:`facegan.tasks.registry.TASKS`; the shared sections are in :mod:`facegan.tasks.schema`).
Unknown keys and wrong types fail with the YAML path and what was expected.

``--set a.b=c`` overrides are applied to the raw YAML mapping before validation, so an
override is checked exactly like a key written in the file. Values are parsed as YAML
(``--set train.amp=true``, ``--set data.masks=[center,eyes]``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from facegan.core.errors import FaceganError, quote
from facegan.core.yaml_file import load_raw, parse_yaml
from facegan.tasks.registry import recipe_types as _registry_recipe_types
from facegan.tasks.schema import Recipe, RecipeBase


def recipe_types() -> dict[str, type[RecipeBase]]:
    """The recipe schema of each task, by its ``task`` value."""
    return _registry_recipe_types()


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
        raise FaceganError(f"--set {quote(text)}: expected KEY=VALUE, e.g. --set loss.identity=0")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise FaceganError(f"--set {quote(text)}: empty key")
    value = parse_yaml(raw, f"--set {quote(key)}", lenient=True) if raw.strip() else None
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
                raise FaceganError(f"--set {quote(text)}: {p} is not a section")
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
        msg = f"unknown task (expected one of: {tasks}) (got {quote(first['input'].get('task'))})"
    else:
        got = first.get("input")
        if got is not None and not isinstance(got, dict):
            msg = f"{msg} (got {quote(got)})"
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
