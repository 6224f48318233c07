"""A task's options of ``eval``/``restore`` and what a checkpoint fixes about them, as data.

A task declares ``Task.options``: option name (a :class:`facegan.tasks.base.TaskOptions`
field) -> :class:`OptionRule`. Options a task does not declare are refused by
:func:`facegan.tasks.registry.check_options`. A rule with a ``checkpoint_field`` says the
option must equal that field of the checkpoint (SR's ``scale``: a ×4 generator cannot upscale
×8, and a ×4 run cannot be resumed as ×8); the functions below check it and word the
messages, and :class:`~facegan.tasks.base.Task` calls them for ``check_checkpoint``,
``describe_options`` and ``check_resume``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from facegan.core.errors import FaceganError


@dataclass(frozen=True)
class OptionRule:
    """One task option; ``OptionRule()`` is an option any checkpoint of the task serves."""

    checkpoint_field: str | None = None
    """The ``Task.checkpoint_info()`` field the option must equal (None: any value is served)."""
    recipe_key: str = ""
    """Where a recipe sets that field (``model.scale``), named when a resume is refused."""
    shown: str = "{}"
    """How a value reads in messages: ``"×{}"`` gives ``×4``."""
    verb: str = "serve"
    """What a checkpoint does with the value: ``upscale`` gives "it cannot upscale ×8"."""

    def __post_init__(self) -> None:
        if self.checkpoint_field and not self.recipe_key:
            raise ValueError(f"option rule on {self.checkpoint_field!r} needs the recipe_key that sets it")

    def show(self, value: Any) -> str:
        return self.shown.format(value)


def _fixed(rules: Mapping[str, OptionRule]) -> list[tuple[str, OptionRule]]:
    """The options a checkpoint fixes, in declaration order."""
    return [(name, rule) for name, rule in rules.items() if rule.checkpoint_field]


def check_checkpoint(rules: Mapping[str, OptionRule], info: Mapping, options, where: str) -> None:
    """FaceganError when the checkpoint fields ``info`` (loaded from ``where``) cannot serve ``options``."""
    for name, rule in _fixed(rules):
        wanted = getattr(options, name)
        theirs = info.get(rule.checkpoint_field)
        if wanted is not None and theirs != wanted:
            raise FaceganError(
                f"{where} is a {rule.show(theirs)} checkpoint; it cannot {rule.verb} {rule.show(wanted)} "
                f"(use a {rule.show(wanted)} run, or --{name} {theirs})"
            )


def describe(rules: Mapping[str, OptionRule], options) -> str:
    """The options that choose a checkpoint, as words after "a '<task>' run" (" of scale ×2")."""
    given = [f"{name} {rule.show(getattr(options, name))}" for name, rule in _fixed(rules)
             if getattr(options, name) is not None]
    return f" of {' and '.join(given)}" if given else ""


def check_resume(rules: Mapping[str, OptionRule], info: Mapping, mine: Mapping, where: str) -> None:
    """FaceganError when the checkpoint ``info`` differs from the run's own fields ``mine``
    (``Task.checkpoint_info()``) in a field an option fixes: its weights cannot go on as this run."""
    for _, rule in _fixed(rules):
        field = rule.checkpoint_field
        theirs, ours = info.get(field), mine.get(field)
        if theirs != ours:
            key = rule.recipe_key
            raise FaceganError(
                f"{where} is a {rule.show(theirs)} checkpoint; it cannot be resumed as {rule.show(ours)} "
                f"({key}={ours}); start a new run with --out, or keep {key}={theirs}"
            )
